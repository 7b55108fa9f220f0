#!/usr/bin/env bash
# ensure-promtool.sh: make sure promtool (Debian's prometheus package) is
# on PATH for the Prometheus rules' checks (make prom-rules, part of make
# test), which fail, never skip, without it.
#
# Installed with apt-get when missing and we are root; otherwise one line
# says what to install, and the script fails.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-promtool: promtool not found; installing prometheus with apt-get (for deploy/prometheus's rule checks)" >&2
	if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2 &&
		command -v promtool >/dev/null 2>&1; then
		exit 0
	fi
	echo "make test: apt-get install prometheus failed; deploy/prometheus's rule checks need promtool" >&2
	exit 1
fi
echo "make test: promtool not found; install it (apt-get install prometheus, as root): deploy/prometheus's rule checks need it" >&2
exit 1
