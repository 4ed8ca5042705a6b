#!/usr/bin/env bash
# `pip check` on the venv, less the requirements of the musicnn and basic-pitch wheels: they are installed
# with --no-deps for their weights only, so their pins (TensorFlow, musicnn's numpy<1.17, basic-pitch's
# librosa, resampy, pretty-midi, mir-eval...) stay unmet on purpose. Anything else pip reports (a real
# conflict between our requirements) fails.
set -uo pipefail
python=${1:-.venv/bin/python}
report=$("$python" -m pip check 2>&1)
conflicts=$(printf '%s\n' "$report" | grep -v -e '^musicnn 0\.1\.0 requires tensorflow,' \
    -e '^musicnn 0\.1\.0 has requirement numpy' -e '^basic-pitch 0\.4\.0 \(requires\|has requirement\) ' \
    -e '^No broken requirements found\.$' -e '^$')
if [ -n "$conflicts" ]; then
    printf 'pip check: %s\n' "$conflicts" >&2
    exit 1
fi
echo "pip check: no broken requirements (musicnn's and basic-pitch's own pins are left unmet on purpose: --no-deps)"
