package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
)

// TestFreshTablesGetStatistics: once a new database's queue tables hold
// their first thousand jobs, the backend has them analyzed, without
// waiting for autovacuum's next wake-up: until then the plans cached while
// they were empty scan them whole.
func TestFreshTablesGetStatistics(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	wall := hlc.NewManualClock(1_704_067_200_000)
	clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true},
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	reltuples := func(table string) float64 {
		t.Helper()
		var n float64
		if err := db.Pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, "scheduler."+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	jobs := make([]queue.Job, 1000)
	for i := range jobs {
		jobs[i] = queue.Job{TenantID: "acme", Kind: "k", Payload: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	if _, err := q.EnqueueMany(ctx, jobs[:999]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.StatsRefreshed():
		t.Fatal("statistics refreshed before the first thousand jobs")
	default:
	}
	if _, err := q.EnqueueMany(ctx, jobs[999:]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.StatsRefreshed():
	case <-time.After(testsignal.Timeout):
		t.Fatalf("no statistics refresh within %v of the thousandth job", testsignal.Timeout)
	}
	for _, table := range []string{"job_state", "scheduler_log", "jobs"} {
		if n := reltuples(table); n < 1000 {
			t.Errorf("scheduler.%s: the planner counts %v rows after the refresh; want the 1000 written", table, n)
		}
	}
}
