#!/usr/bin/env bash
# test-matrix.sh: `make test-matrix`. Runs the PostgreSQL suites (MATRIX_PKGS)
# once per major version of MATRIX_VERSIONS (default: the "matrix" line of
# scripts/postgres-versions), each on a throwaway cluster of exactly that
# version (scripts/with-postgres.sh with ORDO_PG_VERSION; it logs the server
# it started). ORDO_TEST_DATABASE_URL is ignored, so a server of another
# version cannot stand in. The tests that restart PostgreSQL (ALONE_TESTS)
# run on a cluster of their own, as in `make test`.
#
# Every version runs even when an earlier one failed; then one line per
# version and a total, "matrix: N passed, N failed, N skipped", and the exit
# status is 1 if anything failed on any version.
#
# Environment (the Makefile sets them): GO, MATRIX_PKGS, MATRIX_VERSIONS,
# ALONE_TESTS, TEST_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
pkgs=${MATRIX_PKGS:?MATRIX_PKGS is not set}
alone=${ALONE_TESTS:-}
timeout=${TEST_TIMEOUT:-10m}
versions=${MATRIX_VERSIONS:-$(scripts/fetch-postgres.sh --pin matrix)}

"$go" build -o bin/testsummary ./internal/testsummary

total_p=0 total_f=0 total_s=0
lines=()
failed=0
for v in $versions; do
	echo "== test-matrix: PostgreSQL $v"
	start=$(date +%s)
	p=0 f=0 s=0
	for step in main alone; do
		if [ "$step" = main ]; then
			# shellcheck disable=SC2086 # pkgs is a list
			args=(-skip "${alone:-^$}" $pkgs)
		else
			[ -n "$alone" ] || continue
			args=(-run "$alone" ./worker/)
		fi
		out=$(mktemp)
		set +e
		env -u ORDO_TEST_DATABASE_URL ORDO_PG_VERSION="$v" scripts/with-postgres.sh \
			"$go" test -json -count=1 -timeout "$timeout" "${args[@]}" | bin/testsummary | tee "$out"
		rc=${PIPESTATUS[0]}${PIPESTATUS[1]}${PIPESTATUS[2]}
		set -e
		summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1 || true)
		rm -f "$out"
		if [ -z "$summary" ]; then
			echo "test-matrix: PostgreSQL $v ($step): no summary line (exit statuses $rc)"
			f=$((f + 1))
		else
			read -r sp _ sf _ ss _ <<<"$summary"
			p=$((p + sp)) f=$((f + sf)) s=$((s + ss))
		fi
		if [ "$rc" != 000 ] && [ "$f" -eq 0 ]; then
			f=1 # a failure testsummary did not count (the script, the build)
		fi
	done
	secs=$(($(date +%s) - start))
	lines+=("pg$v: $p passed, $f failed, $s skipped (${secs}s)")
	total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
	[ "$f" -eq 0 ] || failed=1
done

echo "== test-matrix: per PostgreSQL major version"
printf '%s\n' "${lines[@]}"
echo "matrix: $total_p passed, $total_f failed, $total_s skipped"
exit "$failed"
