#!/usr/bin/env bash
# The whole suite beside a CPU hog: `stress-ng --cpu N` (default 4, twice the cores of a 2-core CI box)
# runs for as long as `make test` does, and is stopped however the tests end. A test that fails here and
# passes on a quiet machine waits on time instead of on an event. Installs Debian's stress-ng when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${STRESS_CPUS:-4}"
if ! command -v stress-ng >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >&2
    else
        echo "under_load.sh: stress-ng is not installed (apt-get install stress-ng)" >&2
        exit 2
    fi
fi
stress-ng --cpu "$workers" --quiet &
hog=$!
trap 'kill "$hog" 2>/dev/null || true; wait "$hog" 2>/dev/null || true' EXIT
echo "under_load.sh: stress-ng --cpu $workers (pid $hog) beside make test" >&2
make test "$@"
