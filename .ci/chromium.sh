#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the optuna-dashboard browser test: Debian's chromium and
# chromium-driver, installed with apt-get when missing (as root; CHROMIUM_INSTALL=no skips that).
# Without them the test skips, saying why.
set -euo pipefail

if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then
    exit 0
fi
if [ "${CHROMIUM_INSTALL:-yes}" != no ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "chromium.sh: installing Chromium (apt-get install chromium chromium-driver)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
    exit 0
fi
echo "chromium.sh: no chromium/chromedriver and cannot install them here; the dashboard browser test will skip" >&2
