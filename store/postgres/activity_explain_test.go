package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
)

// The dashboard's reads stay index ranges however many jobs there are:
// with 50,000 jobs over a day, half of them started and finished, the
// activity of the last minutes (what the rollup and the charts compute
// from the job tables) and a periodic job's last occurrence read no
// table whole.
func TestActivityPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	const start = 1_704_067_200_000
	clock, wall := hlctest.ManualClock(t, start, hlc.Config{Node: "node-a"})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true},
		Now:     func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	const total, batch = 50_000, 5_000
	for b := range total / batch {
		jobs := make([]queue.Job, batch)
		for i := range jobs {
			n := b*batch + i
			jobs[i] = queue.Job{TenantID: fmt.Sprintf("tenant-%d", n%10), Kind: "noop", Payload: []byte(fmt.Sprintf(`{"n":%d}`, n))}
		}
		if _, err := q.EnqueueMany(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		wall.Advance(2 * time.Hour) // ten batches over the day
	}
	for _, p := range []string{"a", "b"} {
		if _, err := q.Enqueue(ctx, queue.Job{TenantID: "tenant-1", Kind: "tick", Payload: []byte(`{}`),
			IdempotencyKey: driver.PeriodicKey(p, time.UnixMilli(start))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, sql := range []string{
		// Half the jobs started and succeeded, spread over the day.
		`UPDATE scheduler.job_state SET status = 'succeeded', started_at = to_timestamp(1704067200 + (hashtext(job_id::text) & 65535)),
			start_wait_ms = 5, updated_at = to_timestamp(1704067200 + (hashtext(job_id::text) & 65535) + 1)
		 WHERE hashtext(job_id::text) % 2 = 0`,
		`UPDATE scheduler.jobs j SET status = s.status, started_at = s.started_at, start_wait_ms = s.start_wait_ms, updated_at = s.updated_at
		 FROM scheduler.job_state s WHERE s.job_id = j.id AND s.status = 'succeeded'`,
		`ANALYZE scheduler.jobs`, `ANALYZE scheduler.job_state`, `ANALYZE scheduler.scheduler_log`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	var inDefault int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM scheduler.scheduler_log_default`).Scan(&inDefault); err != nil || inDefault != 0 {
		t.Fatalf("scheduler_log_default holds %d entries (%v), want none", inDefault, err)
	}
	from := time.UnixMilli(start).Add(20 * time.Hour)
	to := from.Add(3 * time.Minute)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, c := range []struct {
		name  string
		sql   string
		args  []any
		wants []string
	}{
		{"live activity, every tenant", liveActivitySQL, []any{[]string{"tenant-0", "tenant-1", "tenant-2"}, from, to,
			driver.THLCLowerBound(from.UnixMilli()), driver.THLCLowerBound(to.UnixMilli())},
			[]string{"idx_scheduler_log_tenant_hlc", "idx_job_state_started", "idx_job_state_finished", "idx_jobs_started", "idx_jobs_finished"}},
		{"last periodic occurrence", `SELECT job_id, idempotency_key, t_hlc FROM scheduler.scheduler_log
			WHERE tenant_id = $1 AND idempotency_key LIKE 'ordo.periodic:%'
			  AND idempotency_key COLLATE "C" >= $2 AND idempotency_key COLLATE "C" < $3
			ORDER BY idempotency_key COLLATE "C" DESC LIMIT 16`, []any{"tenant-1", "ordo.periodic:a@0", "ordo.periodic:a@:"},
			[]string{"idx_scheduler_log_periodic"}},
	} {
		text := explain(t, tx, c.sql, c.args...)
		t.Logf("EXPLAIN (%s):\n%s", c.name, text)
		for _, want := range c.wants {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not use %s:\n%s", c.name, want, text)
			}
		}
		// scheduler_log's default partition is empty here (every t_hlc
		// falls in scheduler_log_initial): reading it costs nothing, and
		// the planner reads an empty table without its index.
		plain := strings.ReplaceAll(text, "Seq Scan on scheduler_log_default ", "")
		for _, table := range []string{"job_state", "jobs", "scheduler_log"} {
			if strings.Contains(plain, "Seq Scan on "+table) {
				t.Errorf("%s scans %s:\n%s", c.name, table, text)
			}
		}
	}
}
