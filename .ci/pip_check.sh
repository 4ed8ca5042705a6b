#!/usr/bin/env bash
# `pip check` on the venv, less the requirements of the musicnn wheel: it is installed with --no-deps
# for its weights only, so its TensorFlow and numpy<1.17 pins stay unmet on purpose. Anything else
# pip reports (a real conflict between our requirements) fails.
set -uo pipefail
python=${1:-.venv/bin/python}
report=$("$python" -m pip check 2>&1)
conflicts=$(printf '%s\n' "$report" | grep -v -e '^musicnn 0\.1\.0 requires tensorflow,' \
    -e '^musicnn 0\.1\.0 has requirement numpy' -e '^No broken requirements found\.$' -e '^$')
if [ -n "$conflicts" ]; then
    printf 'pip check: %s\n' "$conflicts" >&2
    exit 1
fi
echo "pip check: no broken requirements (musicnn's own pins are left unmet on purpose: --no-deps)"
