package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
)

// TestSearchPlansAreBounded: a payload search reads a bounded number of
// rows however many jobs the tenant has. Each statement walks its
// (tenant_id, order column) index, and the listing's walk starts at the
// window's floor (a range on the order column), before and after ANALYZE.
// Statements are prepared without their parameters' values, so the plan
// is the one every search gets. Run with -v to see the plans.
func TestSearchPlansAreBounded(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.SQLitePath(t))
	// Generated in SQL: the plans need no valid chains. Every fourth job
	// is tenant small's; the legacy rows are other jobs than the HLC ones.
	for _, q := range []string{`
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999)
		INSERT INTO scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, created_at, chain_pos,
			node_id, kind, payload, priority, max_attempts, run_at)
		SELECT CASE WHEN i % 4 = 0 THEN 'small' ELSE 'big' END, printf('%013d-%06d-node-a', 1704067200000 + i, 0), '',
			printf('00000000-0000-4000-8000-%012d', i), zeroblob(32), NULL, zeroblob(32), 1704067200000, i, 'node-a', 'k' || (i % 5),
			'{"n":' || i || '}', 0, 3, 1704067200000
		FROM n`, `
		INSERT INTO job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, attempts, max_attempts, run_at, updated_at)
		SELECT job_id, tenant_id, '', t_hlc, kind, 'pending', 0, 3, run_at, run_at FROM scheduler_log`, `
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999)
		INSERT INTO jobs (id, tenant_id, kind, payload, payload_digest, priority, status, attempts, max_attempts,
			run_at, created_at, updated_at)
		SELECT printf('00000000-0000-4000-9000-%012d', i), CASE WHEN i % 4 = 0 THEN 'small' ELSE 'big' END, 'k' || (i % 5),
			'{"n":' || i || '}', printf('%064d', i), 0, 'pending', 0, 3, 1704067200000, 1704067200000 + i, 1704067200000
		FROM n`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	const window = 1000
	filter := []any{"big", nil, "", nil, "", false, "", false, 50}
	cases := []struct {
		name, query string
		args        []any
		want        []string // plan steps, each a walk of an index
	}{
		{"hlc floor", searchFloorHLCSQL, []any{"big", window - 1},
			[]string{"SEARCH job_state USING INDEX idx_job_state_tenant_hlc (tenant_id=?)"}},
		{"legacy floor", searchFloorLegacySQL, []any{"big", window - 1},
			[]string{"SEARCH jobs USING INDEX idx_jobs_tenant_created (tenant_id=?)"}},
		{"hlc list", listHLC[0], append(filter, "1704067219000-000000-node-a", "", "no such text"),
			[]string{"SEARCH s USING INDEX idx_job_state_tenant_hlc (tenant_id=? AND t_hlc>?)"}},
		{"hlc list, newest first", listHLC[1], append(filter, "1704067219000-000000-node-a", "", "no such text"),
			[]string{"SEARCH s USING INDEX idx_job_state_tenant_hlc (tenant_id=? AND t_hlc>?)"}},
		{"legacy list", listLegacy[0], append(filter, 1704067219000, "", "no such text"),
			[]string{"SEARCH j USING INDEX idx_jobs_tenant_created (tenant_id=? AND created_at>?)"}},
		{"legacy list, newest first", listLegacy[1], append(filter, 1704067219000, "", "no such text"),
			[]string{"SEARCH j USING INDEX idx_jobs_tenant_created (tenant_id=? AND created_at>?)"}},
		{"kinds", recentKindsSQL, []any{"big", window, driver.MaxKinds},
			[]string{"SEARCH job_state USING INDEX idx_job_state_tenant_hlc (tenant_id=?)", "SEARCH jobs USING INDEX idx_jobs_tenant_created (tenant_id=?)"}},
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
				for _, w := range c.want {
					if !strings.Contains(plan, w) {
						t.Errorf("%s does not %s", c.name, w)
					}
				}
				if strings.Contains(plan+"\n", "SCAN job_state\n") || strings.Contains(plan+"\n", "SCAN jobs\n") ||
					strings.Contains(plan, "SCAN s\n") || strings.Contains(plan, "SCAN j\n") {
					t.Errorf("%s scans a table:\n%s", c.name, plan)
				}
			})
		}
	}
	// And it finds what the window holds: job 19999 is big's newest.
	p := driver.ListParams{TenantID: "big", PayloadContains: `"n":19999}`, SearchWindow: window, Limit: 10}
	jobs, _, err := db.ListJobs(ctx, p)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("search for the newest job: %d jobs (want it on both sides), %v", len(jobs), err)
	}
	p.PayloadContains = `"n":1}` // big's oldest, outside the window
	if jobs, _, err := db.ListJobs(ctx, p); err != nil || len(jobs) != 0 {
		t.Fatalf("search outside the window: %d jobs, %v", len(jobs), err)
	}
}
