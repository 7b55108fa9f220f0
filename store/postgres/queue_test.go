package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
)

// queues is a migrated database and one manual clock, on which a test
// makes queues of any mode: several queues on one clock are several
// readers of one node.
type queues struct {
	t     *testing.T
	db    *postgres.DB
	wall  *hlc.ManualClock
	clock *hlc.Clock
}

func newQueues(t *testing.T) *queues {
	t.Helper()
	db := openMigrated(t)
	clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a", Store: db.HLCState()})
	return &queues{t: t, db: db, wall: wall, clock: clock}
}

func (qs *queues) queue(opts queue.Options) *queue.Queue {
	qs.t.Helper()
	q, err := queue.New(context.Background(), queue.Config{Backend: qs.db, Clock: qs.clock, Options: opts,
		Now: func() time.Time { return time.UnixMilli(qs.wall.UnixMilli()) }})
	if err != nil {
		qs.t.Fatal(err)
	}
	return q
}

// newQueue is a queue of its own database and clock.
func newQueue(t *testing.T, opts queue.Options) (*queue.Queue, *hlc.ManualClock) {
	t.Helper()
	qs := newQueues(t)
	return qs.queue(opts), qs.wall
}

func TestSmokeAllModes(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []queue.Options{
		{}, {DualWriteMode: true}, {EnableHlcOrdering: true, DualWriteMode: true}, {EnableHlcOrdering: true, VerifyOnDequeue: true},
	} {
		t.Run(opts.Mode().String(), func(t *testing.T) {
			q, wall := newQueue(t, opts)
			var jobs []queue.Job
			for i := range 50 {
				jobs = append(jobs, queue.Job{TenantID: "acme", PartitionKey: fmt.Sprint("p", i%3), Kind: "report", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			}
			res, err := q.EnqueueMany(ctx, jobs)
			if err != nil {
				t.Fatal(err)
			}
			one, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "report", Payload: []byte(`{"n":0}`), PartitionKey: "p0"})
			if err != nil {
				t.Fatal(err)
			}
			if !one.Deduplicated || one.JobID != res[0].JobID || one.THLC != res[0].THLC {
				t.Fatalf("dedup: %+v vs %+v", one, res[0])
			}
			wall.Advance(time.Second)
			done := 0
			for {
				leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 7})
				if err != nil {
					t.Fatal(err)
				}
				if len(leases) == 0 {
					break
				}
				for _, l := range leases {
					if err := q.Complete(ctx, l); err != nil {
						t.Fatal(err)
					}
					done++
				}
			}
			if done != 50 {
				t.Fatalf("completed %d, want 50", done)
			}
		})
	}
}

func TestFairTenantsAndListen(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []queue.Options{{}, {EnableHlcOrdering: true}} {
		t.Run(opts.Mode().String(), func(t *testing.T) {
			q, wall := newQueue(t, opts)
			db := q.Backend().(*postgres.DB)
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			wake, err := db.Listen(lctx)
			if err != nil {
				t.Fatal(err)
			}
			var big []queue.Job
			for i := range 500 {
				big = append(big, queue.Job{TenantID: "big", Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))})
			}
			if _, err := q.EnqueueMany(ctx, big); err != nil {
				t.Fatal(err)
			}
			select {
			case <-wake:
			case <-time.After(10 * time.Second):
				t.Fatal("no notification after a committed enqueue")
			}
			for i := range 3 {
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: "small", Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
					t.Fatal(err)
				}
			}
			wall.Advance(time.Second)
			leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 6, FairTenants: true})
			if err != nil {
				t.Fatal(err)
			}
			perTenant := map[string]int{}
			for _, l := range leases {
				perTenant[l.TenantID]++
			}
			if perTenant["small"] != 3 || perTenant["big"] != 3 {
				t.Fatalf("fair dequeue of 6 gave %v, want 3 each", perTenant)
			}
		})
	}
}

// TestFreshTablesGetStatistics: once a new database's queue tables hold
// their first thousand jobs, the backend has them analyzed, without
// waiting for autovacuum's next wake-up: until then the plans cached while
// they were empty scan them whole.
func TestFreshTablesGetStatistics(t *testing.T) {
	ctx := context.Background()
	qs := newQueues(t)
	db, q := qs.db, qs.queue(queue.Options{EnableHlcOrdering: true, DualWriteMode: true})
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
