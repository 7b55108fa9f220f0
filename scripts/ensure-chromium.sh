#!/usr/bin/env bash
# ensure-chromium.sh: make sure Debian's chromium is at /usr/bin/chromium
# for the dashboard's browser tests (dashboard/browser_test.go), which
# fail, never skip, without it. `make test` runs this before `go test`.
#
# Installed with apt-get when missing and we are root; otherwise one line
# says what to install, and the script fails.
set -euo pipefail

chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-chromium: $chromium not found; installing chromium with apt-get (for the dashboard's browser tests)" >&2
	if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2 && [ -x "$chromium" ]; then
		exit 0
	fi
	echo "make test: apt-get install chromium failed; the dashboard's browser tests need $chromium" >&2
	exit 1
fi
echo "make test: $chromium not found; install it (apt-get install chromium, as root): the dashboard's browser tests need it" >&2
exit 1
