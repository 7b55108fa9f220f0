#!/usr/bin/env bash
# ensure-openssh.sh: make sure Debian's openssh-client (ssh-agent, ssh-add,
# ssh-keygen) is installed for the witness test
# (cmd/ordo/witness_test.go), which runs litewitness with a dedicated
# ssh-agent and fails, never skips, without it. `make test` runs this
# before `go test`.
#
# Installed with apt-get when missing and we are root; otherwise one line
# says what to install, and the script fails.
set -euo pipefail

have() { command -v ssh-agent >/dev/null 2>&1 && command -v ssh-add >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; }
if have; then
	exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "ensure-openssh: ssh-agent/ssh-add/ssh-keygen not found; installing openssh-client with apt-get (for the witness test)" >&2
	if apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >&2 && have; then
		exit 0
	fi
	echo "make test: apt-get install openssh-client failed; the witness test needs ssh-agent, ssh-add and ssh-keygen" >&2
	exit 1
fi
echo "make test: ssh-agent, ssh-add or ssh-keygen not found; install openssh-client (apt-get install openssh-client, as root): the witness test needs them" >&2
exit 1
