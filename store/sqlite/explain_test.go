package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/internal/testdb"
)

// explain returns SQLite's EXPLAIN QUERY PLAN of query, one step a line.
func explain(t *testing.T, db *DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.SQL.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestDequeuePlansUseIndexes checks, on a backlog of 5,000 jobs on both
// sides (a tenth of them finished), that every dequeue walks an index in
// the read order instead of scanning and sorting the table, before and
// after ANALYZE. Run with -v to see the plans.
func TestDequeuePlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.SQLitePath(t))
	// The backlog is generated in SQL (the plans do not need valid
	// chains), which keeps the test fast under the race detector.
	const total = 5_000
	now := time.UnixMilli(1_704_067_200_000)
	for _, q := range []string{`
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO jobs (id, tenant_id, project_id, kind, payload, payload_digest, priority, status, attempts, max_attempts,
			run_at, created_at, updated_at)
		SELECT printf('00000000-0000-4000-8000-%012d', i), 'tenant-' || (i % 10), NULLIF('p' || (i % 7), 'p0'), 'noop',
			'{"n":' || i || '}', printf('%064d', i), i % 5, CASE WHEN i % 10 = 0 THEN 'succeeded' ELSE 'pending' END,
			0, 3, ?2, ?2 + i, ?2
		FROM n`, `
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, attempts, max_attempts, run_at, updated_at)
		SELECT printf('00000000-0000-4000-8000-%012d', i), 'tenant-' || (i % 10), 'p' || (i % 7),
			printf('%013d-%06d-node-a', ?2 + i, 0), 'noop', CASE WHEN i % 10 = 0 THEN 'succeeded' ELSE 'pending' END,
			0, 3, ?2, ?2
		FROM n`, `
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, created_at, chain_pos,
			node_id, kind, payload, priority, max_attempts, run_at)
		SELECT 'tenant-' || (i % 10), printf('%013d-%06d-node-a', ?2 + i, 0), 'p' || (i % 7),
			printf('00000000-0000-4000-8000-%012d', i), zeroblob(32), NULL, zeroblob(32), ?2, i / 70, 'node-a', 'noop',
			'{"n":' || i || '}', 0, 3, ?2
		FROM n`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q, total, now.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}

	strict := func(format, tenantTerm string) string { return fmt.Sprintf(format, tenantTerm) }
	cases := []struct {
		name, query, index, notWanted string
		args                          []any
	}{
		{"hlc", pickHLCSQL, "idx_job_state_dequeue", "TEMP B-TREE", []any{now.UnixMilli(), nil, 100}},
		{"hlc kinds", pickHLCSQL, "idx_job_state_dequeue", "TEMP B-TREE", []any{now.UnixMilli(), `["noop"]`, 100}},
		{"hlc tenant", pickHLCTenantSQL, "idx_job_state_tenant_dequeue", "TEMP B-TREE", []any{now.UnixMilli(), nil, 100, "tenant-3"}},
		{"legacy", pickLegacySQL, "idx_jobs_dequeue", "TEMP B-TREE", []any{now.UnixMilli(), nil, 100}},
		{"legacy tenant", pickLegacyTenantSQL, "idx_jobs_tenant_dequeue", "TEMP B-TREE", []any{now.UnixMilli(), nil, 100, "tenant-3"}},
		{"hlc strict", strict(strictHLCHeads, ""), "idx_job_state_partition_head (tenant_id=? AND partition_key>?)", "AUTOMATIC", []any{now.UnixMilli(), nil, 100}},
		{"legacy strict", strict(strictLegacyHeads, ""), "idx_jobs_partition_head (tenant_id=? AND <expr>>?)", "AUTOMATIC", []any{now.UnixMilli(), nil, 100}},
		{"hlc fair", pickHLCFairSQL, "idx_job_state_tenant_dequeue", "SCAN job_state", []any{now.UnixMilli(), nil, 100, "tenant-3"}},
		{"legacy fair", pickLegacyFairSQL, "idx_jobs_tenant_dequeue", "SCAN jobs", []any{now.UnixMilli(), nil, 100, "tenant-3"}},
		{"lease hlc", leaseHLCSQL, "sqlite_autoindex_job_state_1", "SCAN job_state", []any{`[]`, "w", "t", 1, 1}},
		{"lease legacy", leaseLegacySQL, "sqlite_autoindex_jobs_1", "SCAN jobs", []any{`[]`, "w", "t", 1, 1}},
		{"chain entries", chainEntrySQL, "idx_scheduler_log_job", "SCAN scheduler_log", []any{`[]`, ""}},
		{"dedup", existingSQL, "sqlite_autoindex_jobs_1", "SCAN jobs\n", []any{`[]`}},
		{"chain head", headSQL, "sqlite_autoindex_chain_heads_1", "SCAN", []any{"t", "p"}},
		{"stored links", storedLinkSQL, "idx_scheduler_log_job", "SCAN scheduler_log", []any{`[]`}},
		{"expired hlc", expiredHLCSQL, "idx_job_state_lease_expiry", "SCAN job_state\n", []any{now.UnixMilli(), 10}},
		{"expired legacy", expiredLegacySQL, "idx_jobs_lease_expiry", "SCAN jobs\n", []any{now.UnixMilli(), 10}},
		{"rescue", rescueHLCSQL, "sqlite_autoindex_job_state_1", "SCAN job_state\n", []any{`[]`, 1}},
		{"transition", transitionHLCSQL, "sqlite_autoindex_job_state_1", "SCAN", []any{"id", "t", "s", nil, "", 0, 1, "tenant-3"}},
		{"transition any tenant", transitionHLCSQL, "sqlite_autoindex_job_state_1", "SCAN", []any{"id", "t", "s", nil, "", 0, 1, ""}},
		{"extend", extendLegacySQL, "sqlite_autoindex_jobs_1", "SCAN", []any{"id", "t", 1, 1, "tenant-3"}},
	}
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			if _, err := db.SQL.ExecContext(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/analyzed=%v", c.name, analyzed), func(t *testing.T) {
				plan := explain(t, db, c.query, c.args...)
				t.Logf("EXPLAIN QUERY PLAN (%s):\n%s", c.name, plan)
				if !strings.Contains(plan, c.index) || strings.Contains(plan+"\n", c.notWanted) {
					t.Fatalf("%s does not walk %s (or uses %q):\n%s", c.name, c.index, c.notWanted, plan)
				}
			})
		}
	}
}
