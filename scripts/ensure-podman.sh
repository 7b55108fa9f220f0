#!/usr/bin/env bash
# ensure-podman.sh: make sure podman (a daemonless image builder and
# runner), runc and the CA certificates are installed, from Debian's
# packages, for `make container` and the container test
# (deploy/deploy_test.go), which fail, never skip, without them.
#
# Installed with apt-get when missing and we are root; otherwise one line
# says what to install, and the script fails.
set -euo pipefail

certs=/etc/ssl/certs/ca-certificates.crt
if command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && [ -f "$certs" ]; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-podman: podman, runc or $certs not found; installing podman runc ca-certificates with apt-get (for deploy/container)" >&2
	if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc ca-certificates >&2 &&
		command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && [ -f "$certs" ]; then
		exit 0
	fi
	echo "make test: apt-get install podman runc ca-certificates failed; deploy/container's build and test need them" >&2
	exit 1
fi
echo "make test: podman, runc or $certs not found; install them (apt-get install podman runc ca-certificates, as root): deploy/container's build and test need them" >&2
exit 1
