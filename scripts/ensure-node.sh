#!/usr/bin/env bash
# ensure-node.sh: make sure node (18 or later) and npm are installed, for
# the TypeScript client's tests (clients/typescript) and the chain vectors'
# verifier. `make ts-client` runs this first: the tests fail, never skip,
# without them.
#
# Debian's nodejs and npm are installed with apt-get when missing and we
# are root; otherwise one line says what to install, and the script fails.
set -euo pipefail

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -eq 0 ] && ! command -v npm >/dev/null 2>&1; then
	missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "ensure-node: installing ${missing[*]} with apt-get (for the TypeScript client's tests)" >&2
		if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }; then
			echo "make test: apt-get install ${missing[*]} failed; the TypeScript client's tests need node and npm" >&2
			exit 1
		fi
	else
		echo "make test: node or npm not found; install them (apt-get install nodejs npm, as root): the TypeScript client's tests need them" >&2
		exit 1
	fi
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
	echo "make test: node $(node --version) is too old; the TypeScript client needs Node 18 or later" >&2
	exit 1
fi
