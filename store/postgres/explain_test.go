package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
)

// The guide: "Ensure idx_scheduler_log_tenant_hlc is being used" and HLC
// dequeue latency "similar to legacy". With 100,000 queued jobs, both
// dequeues must walk an index, never scan the table.
func TestDequeuePlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a"})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true},
		Now:     func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	const total, batch = 100_000, 10_000
	for b := range total / batch {
		jobs := make([]queue.Job, batch)
		for i := range jobs {
			n := b*batch + i
			jobs[i] = queue.Job{TenantID: fmt.Sprintf("tenant-%d", n%10), PartitionKey: fmt.Sprintf("p%d", n%7),
				Kind: "noop", Priority: n % 5, Payload: []byte(fmt.Sprintf(`{"n":%d}`, n))}
		}
		if _, err := q.EnqueueMany(ctx, jobs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE scheduler.jobs; ANALYZE scheduler.job_state; ANALYZE scheduler.scheduler_log`); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(wall.UnixMilli() + 1000)
	for _, c := range []struct {
		name, sql, index, table string
	}{
		{"hlc", dequeueSQL(driver.DequeueParams{HLCOrder: true}), "idx_job_state_dequeue", "job_state"},
		{"legacy", dequeueSQL(driver.DequeueParams{}), "idx_jobs_dequeue", "jobs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			text := explain(t, tx, c.sql, now, 100, nil, "", "w", uuid.New(), now.Add(time.Minute))
			if !strings.Contains(text, c.index) || strings.Contains(text, "Seq Scan on "+c.table) {
				t.Fatalf("%s dequeue does not walk %s:\n%s", c.name, c.index, text)
			}
		})
	}
	// Retention's statement finds the finished jobs through their partial
	// indexes (migration 009): with 100,000 jobs, half of them finished
	// but none due yet, a round must not read the tables.
	t.Run("prune", func(t *testing.T) {
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		for _, q := range []string{
			`UPDATE scheduler.job_state SET status = 'succeeded' WHERE job_id IN (SELECT job_id FROM scheduler.job_state LIMIT 50000)`,
			`UPDATE scheduler.jobs j SET status = 'succeeded' FROM scheduler.job_state s WHERE s.job_id = j.id AND s.status = 'succeeded'`,
			`ANALYZE scheduler.job_state`, `ANALYZE scheduler.jobs`,
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		text := explain(t, tx, pruneSQL, now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-time.Hour), 1000)
		t.Logf("EXPLAIN (prune):\n%s", text)
		for _, want := range []string{"idx_job_state_finished", "idx_jobs_finished"} {
			if !strings.Contains(text, want) {
				t.Errorf("the prune statement does not use %s:\n%s", want, text)
			}
		}
		if strings.Contains(text, "Seq Scan on job_state") || strings.Contains(text, "Seq Scan on jobs") {
			t.Errorf("the prune statement scans a table:\n%s", text)
		}
	})
	// The guide's index serves a tenant's history in HLC order.
	var plan []string
	rows, err := db.Pool.Query(ctx, `EXPLAIN SELECT job_id, t_hlc FROM scheduler.scheduler_log WHERE tenant_id = 'tenant-3' ORDER BY t_hlc LIMIT 50`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan = append(plan, line)
	}
	rows.Close()
	if text := strings.Join(plan, "\n"); !strings.Contains(text, "idx_scheduler_log_tenant_hlc") {
		t.Fatalf("tenant history does not use idx_scheduler_log_tenant_hlc:\n%s", text)
	}
}

// explain returns the plan of sql with args, as EXPLAIN prints it.
func explain(t *testing.T, tx pgx.Tx, sql string, args ...any) string {
	t.Helper()
	rows, err := tx.Query(context.Background(), "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}
