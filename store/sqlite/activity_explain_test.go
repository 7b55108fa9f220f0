package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
)

// TestActivityPlansUseIndexes: on 5,000 jobs on both sides, half of them
// started and finished over a day, the activity of a few minutes (what
// the rollup and the charts compute from the job tables) and a periodic
// job's last occurrence are searches of indexes, not scans, before and
// after ANALYZE. Run with -v to see the plans.
func TestActivityPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.SQLitePath(t))
	const total = 5_000
	start := time.UnixMilli(1_704_067_200_000)
	// Generated in SQL (the plans need no valid chains): job i enqueued
	// at start + 17 s * i, the even ones started a second later and
	// succeeded a second after that.
	for _, q := range []string{`
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO jobs (id, tenant_id, kind, payload, payload_digest, status, attempts, max_attempts,
			run_at, created_at, updated_at, started_at, start_wait_ms)
		SELECT printf('00000000-0000-4000-8000-%012d', i), 'tenant-' || (i % 10), 'noop', '{"n":' || i || '}', printf('%064d', i),
			CASE WHEN i % 2 = 0 THEN 'succeeded' ELSE 'pending' END, i % 2, 3, ?2 + 17000 * i, ?2 + 17000 * i,
			?2 + 17000 * i + 2000 * (1 - i % 2), CASE WHEN i % 2 = 0 THEN ?2 + 17000 * i + 1000 END, CASE WHEN i % 2 = 0 THEN 1000 END
		FROM n`, `
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, attempts, max_attempts, run_at, updated_at,
			started_at, start_wait_ms)
		SELECT printf('00000000-0000-4000-8000-%012d', i), 'tenant-' || (i % 10), '', printf('%013d-%06d-node-a', ?2 + 17000 * i, 0), 'noop',
			CASE WHEN i % 2 = 0 THEN 'succeeded' ELSE 'pending' END, i % 2, 3, ?2 + 17000 * i, ?2 + 17000 * i + 2000 * (1 - i % 2),
			CASE WHEN i % 2 = 0 THEN ?2 + 17000 * i + 1000 END, CASE WHEN i % 2 = 0 THEN 1000 END
		FROM n`, `
		WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
		INSERT INTO scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, created_at, chain_pos,
			node_id, kind, payload, priority, max_attempts, run_at, idempotency_key)
		SELECT 'tenant-' || (i % 10), printf('%013d-%06d-node-a', ?2 + 17000 * i, 0), '', printf('00000000-0000-4000-8000-%012d', i),
			zeroblob(32), NULL, zeroblob(32), ?2 + 17000 * i, i / 10, 'node-a', 'noop', '{"n":' || i || '}', 0, 3, ?2 + 17000 * i,
			CASE WHEN i % 100 = 1 THEN 'ordo.periodic:a@' || i END
		FROM n`,
	} {
		if _, err := db.SQL.ExecContext(ctx, q, total, start.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	from := start.Add(20 * time.Hour)
	to := from.Add(3 * time.Minute)
	lo, hi := driver.PeriodicKeyRange("a")
	cases := []struct {
		name  string
		query string
		args  []any
		wants []string
	}{
		{"live activity", liveActivitySQL, []any{`["tenant-0","tenant-1","tenant-2"]`, from.UnixMilli(), to.UnixMilli(),
			driver.THLCLowerBound(from.UnixMilli()), driver.THLCLowerBound(to.UnixMilli())},
			[]string{"SEARCH scheduler_log USING COVERING INDEX idx_scheduler_log_tenant_hlc", "idx_job_state_started", "idx_job_state_finished",
				"idx_jobs_started", "idx_jobs_finished", "idx_jobs_tenant_created"}},
		{"last periodic occurrence", lastPeriodicSQL, []any{"tenant-1", lo, hi, driver.PeriodicScanLimit},
			[]string{"idx_scheduler_log_periodic"}},
	}
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			if _, err := db.SQL.ExecContext(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range cases {
			plan := explain(t, db, c.query, c.args...)
			t.Logf("EXPLAIN QUERY PLAN (%s, analyzed=%v):\n%s", c.name, analyzed, plan)
			for _, want := range c.wants {
				if !strings.Contains(plan, want) {
					t.Errorf("%s (analyzed=%v) does not use %s:\n%s", c.name, analyzed, want, plan)
				}
			}
			for _, table := range []string{"job_state", "jobs", "scheduler_log"} {
				if strings.Contains(plan+"\n", "SCAN "+table+"\n") || strings.Contains(plan, "SCAN "+table+" USING") {
					t.Errorf("%s (analyzed=%v) scans %s:\n%s", c.name, analyzed, table, plan)
				}
			}
		}
	}
}
