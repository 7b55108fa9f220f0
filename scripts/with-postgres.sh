#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with ORDO_TEST_DATABASE_URL pointing at a reachable PostgreSQL
# server and exits with CMD's exit code.
#
#   * If ORDO_TEST_DATABASE_URL is already set and answers, it is used as is.
#   * Otherwise a throwaway cluster is created in a fresh temp directory, on
#     its own free port (54320 upward) and its own unix socket directory,
#     tuned for tests (fsync off, no WAL durability), and removed on exit,
#     also on failure and on Ctrl-C. With ORDO_PG_DURABLE=1 the cluster
#     keeps PostgreSQL's durability defaults instead (fsync,
#     synchronous_commit and full_page_writes on), as the benchmark needs.
#
# Server binaries are looked for with `pg_config --bindir`, then in
# /usr/lib/postgresql/*/bin (newest first), then next to `initdb` on PATH.
# If none are found and we are root, `apt-get install postgresql` is tried.
#
# Environment:
#   ORDO_TEST_DATABASE_URL  use this server if it is reachable
#   ORDO_PG_BINDIR          use the server binaries in this directory only
#                           (no search, no apt-get); e.g. /nonexistent to
#                           simulate a machine without PostgreSQL
#   ORDO_PG_PORT_BASE       first port to try (default 54320)
#   ORDO_PG_DURABLE         1: a throwaway cluster keeps the durability
#                           defaults (the test tuning turns them off); no
#                           effect on a server ORDO_TEST_DATABASE_URL names
set -euo pipefail

me="with-postgres"
fail_line="make test: no PostgreSQL server found; install it (apt-get install postgresql) or set ORDO_TEST_DATABASE_URL=postgres://..."

log() { echo "$me: $*" >&2; }

if [ "$#" -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

# The throwaway cluster's durability settings (ORDO_PG_DURABLE).
durability="fsync = off
synchronous_commit = off
full_page_writes = off"
profile="fast: fsync, synchronous_commit and full_page_writes off"
case "${ORDO_PG_DURABLE:-}" in
'' | 0) ;;
1)
	durability="# ORDO_PG_DURABLE=1: fsync, synchronous_commit and full_page_writes keep their defaults (on)"
	profile="durable: fsync, synchronous_commit and full_page_writes at their defaults"
	;;
*)
	log "ORDO_PG_DURABLE must be 1, 0 or unset, not '$ORDO_PG_DURABLE'"
	exit 2
	;;
esac

# redact hides a password in a postgres:// URL before it is printed.
redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# find_client NAME prints the path of a PostgreSQL client tool, if any.
find_client() {
	local p d
	if p=$(command -v "$1" 2>/dev/null); then
		echo "$p"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/$1" ]; then
			echo "$d/$1"
			return 0
		fi
	done
	return 1
}

# reachable URL succeeds if a server answers at URL.
reachable() {
	local url=$1 tool
	if tool=$(find_client psql); then
		PGCONNECT_TIMEOUT=3 "$tool" -X -q -At -d "$url" -c 'select 1' >/dev/null 2>&1
	elif tool=$(find_client pg_isready); then
		"$tool" -q -t 3 -d "$url" >/dev/null 2>&1
	else
		log "neither psql nor pg_isready found; trusting ORDO_TEST_DATABASE_URL as is"
		return 0
	fi
}

if [ -n "${ORDO_TEST_DATABASE_URL:-}" ]; then
	if reachable "$ORDO_TEST_DATABASE_URL"; then
		if [ "${ORDO_PG_DURABLE:-0}" = 1 ]; then
			log "ORDO_PG_DURABLE=1 has no effect: ORDO_TEST_DATABASE_URL answers and is used with its own settings"
		fi
		export ORDO_TEST_DATABASE_URL
		exec "$@"
	fi
	log "ORDO_TEST_DATABASE_URL=$(redact "$ORDO_TEST_DATABASE_URL") is not reachable; starting a throwaway cluster instead"
fi

# ---------------------------------------------------------------------------
# Locate the server binaries.

is_bindir() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

find_bindir() {
	local d
	if [ -n "${ORDO_PG_BINDIR:-}" ]; then
		is_bindir "$ORDO_PG_BINDIR" && echo "$ORDO_PG_BINDIR"
		return
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if is_bindir "$d"; then
			echo "$d"
			return
		fi
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if is_bindir "$d"; then
			echo "$d"
			return
		fi
	done
	if d=$(command -v initdb 2>/dev/null); then
		d=$(dirname "$d")
		if is_bindir "$d"; then
			echo "$d"
			return
		fi
	fi
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ] && [ -z "${ORDO_PG_BINDIR:-}" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	log "no PostgreSQL server binaries found; installing them with apt-get (postgresql)"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends postgresql >&2; then
		bindir=$(find_bindir || true)
	else
		log "apt-get install postgresql failed"
	fi
fi
if [ -z "$bindir" ]; then
	echo "$fail_line" >&2
	exit 1
fi

# ---------------------------------------------------------------------------
# Create and start the throwaway cluster.

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	# PostgreSQL refuses to run as root: run initdb/pg_ctl as postgres.
	if ! id postgres >/dev/null 2>&1; then
		echo "make test: running as root but there is no 'postgres' user to run the server as; create it or set ORDO_TEST_DATABASE_URL=postgres://..." >&2
		exit 1
	fi
	if command -v runuser >/dev/null 2>&1; then
		as_pg=(runuser -u postgres --)
	else
		as_pg=(su_postgres)
	fi
	tmp_parent=/tmp # must be traversable by postgres
else
	tmp_parent=${TMPDIR:-/tmp}
fi

# su_postgres CMD ARGS... runs a command as postgres via su (no runuser).
su_postgres() { su postgres -s /bin/sh -c "$(printf '%q ' "$@")"; }

pg() { "${as_pg[@]}" "$@"; }

tmpdir=""
started=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$started" ]; then
		local pid i
		pid=$(head -n 1 "$tmpdir/data/postmaster.pid" 2>/dev/null || true)
		if ! pg "$bindir/pg_ctl" -D "$tmpdir/data" -m immediate -w -t 30 stop >/dev/null 2>&1; then
			# Last resort: kill the postmaster this script started.
			if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		# pg_ctl returns once the pid file is gone; give the postmaster a
		# moment to actually exit so that nothing outlives this script.
		if [ -n "$pid" ]; then
			for i in $(seq 50); do
				case $(ps -o stat= -p "$pid" 2>/dev/null || true) in
				'' | Z*) break ;;
				esac
				sleep 0.1
			done
		fi
	fi
	if [ -n "$tmpdir" ]; then
		rm -rf "$tmpdir"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

tmpdir=$(mktemp -d "$tmp_parent/ordo-pg.XXXXXX")
mkdir "$tmpdir/run"
if [ "$(id -u)" -eq 0 ]; then
	chown -R postgres: "$tmpdir"
fi

if ! pg "$bindir/initdb" -D "$tmpdir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
	>"$tmpdir/initdb.log" 2>&1; then
	log "initdb failed:"
	tail -n 30 "$tmpdir/initdb.log" >&2
	exit 1
fi

preload=""
if [ -x "$bindir/pg_config" ]; then
	sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null || true)
	pkglibdir=$("$bindir/pg_config" --pkglibdir 2>/dev/null || true)
	if [ -f "$sharedir/extension/pg_stat_statements.control" ] && [ -f "$pkglibdir/pg_stat_statements.so" ]; then
		preload="shared_preload_libraries = 'pg_stat_statements'"
	fi
fi

cat >>"$tmpdir/data/postgresql.conf" <<EOF

# --- added by scripts/with-postgres.sh: throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$tmpdir/run'
max_connections = 200
$durability
$preload
EOF

# port_in_use PORT succeeds if something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

port=${ORDO_PG_PORT_BASE:-54320}
last=$((port + 100))
while :; do
	while [ "$port" -le "$last" ] && port_in_use "$port"; do
		port=$((port + 1))
	done
	if [ "$port" -gt "$last" ]; then
		log "no free port between ${ORDO_PG_PORT_BASE:-54320} and $last"
		exit 1
	fi
	started=1
	if pg "$bindir/pg_ctl" -D "$tmpdir/data" -l "$tmpdir/postgres.log" -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
		break
	fi
	# Another process may have taken the port between the check and the
	# start: try the next one. Anything else is fatal.
	if grep -q 'could not bind\|Address already in use' "$tmpdir/postgres.log" 2>/dev/null; then
		pg "$bindir/pg_ctl" -D "$tmpdir/data" -m immediate -w stop >/dev/null 2>&1 || true
		: >"$tmpdir/postgres.log"
		port=$((port + 1))
		continue
	fi
	log "PostgreSQL failed to start; server log tail:"
	tail -n 30 "$tmpdir/postgres.log" >&2 || true
	exit 1
done

# pgctl stop|start stops (fast: every client is disconnected) or starts
# this cluster again, for the test that restarts PostgreSQL under load
# (make test runs it in a step of its own, so no other test shares the
# outage). Only a cluster started here can be restarted.
cat >"$tmpdir/pgctl" <<PGCTL
#!/usr/bin/env bash
set -euo pipefail
as_pg=()
if [ "\$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); fi
case "\${1:-}" in
stop) exec "\${as_pg[@]}" "$bindir/pg_ctl" -D "$tmpdir/data" -m fast -w -t 60 stop ;;
start) exec "\${as_pg[@]}" "$bindir/pg_ctl" -D "$tmpdir/data" -l "$tmpdir/postgres.log" -o "-p $port" -w -t 60 start ;;
*) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
PGCTL
chmod 755 "$tmpdir/pgctl"
export ORDO_TEST_PG_CTL="$tmpdir/pgctl"

export ORDO_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
log "throwaway PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $tmpdir; $profile)"

set +e
"$@"
rc=$?
set -e
exit "$rc"
