#!/bin/sh
# Make sure Debian's headless Chromium is there for the dashboard's browser tests and bench.
#
#   scripts/ensure_chromium.sh
#
# Uses $SPOTGATE_CHROMIUM (default /usr/bin/chromium) when it exists. Otherwise, running as root with
# apt-get, installs Debian's `chromium` package. Otherwise says how to install it and exits 0: the
# browser tests then skip with that reason (Playwright's own browser download is never used).
# Diagnostics go to stderr.
set -eu

CHROMIUM="${SPOTGATE_CHROMIUM:-/usr/bin/chromium}"
say() { echo "ensure_chromium: $*" >&2; }

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium for the browser tests (apt-get)"
    if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >&2; then
        [ -x "$CHROMIUM" ] && exit 0
    fi
    say "apt-get could not install chromium: the browser tests will be skipped"
    exit 0
fi
say "no Chromium at $CHROMIUM: the browser tests will be skipped (install Debian's chromium: sudo apt-get install chromium, or set SPOTGATE_CHROMIUM)"
exit 0
