package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/sqlite"
)

func benchDB(b *testing.B) (*sqlite.DB, *hlc.Clock, *hlc.ManualClock) {
	b.Helper()
	db := testdb.OpenMigrated(b, sqlite.Open, testdb.SQLitePath(b))
	clock, wall := hlctest.ManualClock(b, t0, hlc.Config{Node: "node-a", Store: db.HLCState()})
	return db, clock, wall
}

func benchJobs(b *testing.B, n, from int, now time.Time) []*driver.Prepared {
	jobs := make([]*driver.Prepared, n)
	for i := range jobs {
		payload := []byte(fmt.Sprintf(`{"n":%d}`, from+i))
		hash, _ := chain.PayloadHash(payload)
		p := &driver.Prepared{TenantID: fmt.Sprintf("tenant-%d", (from+i)%4), PartitionKey: fmt.Sprintf("p%d", (from+i)%3), Kind: "noop",
			Payload: payload, PayloadHash: hash, RunAt: now, MaxAttempts: 3, Status: driver.StatusPending, CreatedAt: now}
		p.JobID, _ = chain.JobID(p.TenantID, p.PartitionKey, p.Kind, "", hash)
		jobs[i] = p
	}
	return jobs
}

// BenchmarkEnqueue reports the cost per job of dual-write enqueues in
// batches of 1 (no group commit) and 100.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			db, clock, wall := benchDB(b)
			ctx := context.Background()
			now := time.UnixMilli(wall.UnixMilli())
			n := 0
			for b.Loop() {
				jobs := benchJobs(b, size, n, now)
				n += size
				if _, err := db.Enqueue(ctx, driver.NewEnqueueBatch(jobs, true, true, clock, now)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/job")
		})
	}
}

// BenchmarkDequeueComplete leases and completes one job at a time from a
// backlog of 10,000 (dual-write), in both read orders.
func BenchmarkDequeueComplete(b *testing.B) {
	for _, hlcOrder := range []bool{false, true} {
		for _, strict := range []bool{false, true} {
			b.Run(fmt.Sprintf("hlc=%v/strict=%v", hlcOrder, strict), func(b *testing.B) {
				db, clock, wall := benchDB(b)
				ctx := context.Background()
				now := time.UnixMilli(wall.UnixMilli())
				refill := func(from int) {
					for i := 0; i < 10_000; i += 1000 {
						if _, err := db.Enqueue(ctx, driver.NewEnqueueBatch(benchJobs(b, 1000, from+i, now), true, true, clock, now)); err != nil {
							b.Fatal(err)
						}
					}
				}
				refill(0)
				n := 10_000
				for b.Loop() {
					leases, err := db.Dequeue(ctx, driver.DequeueParams{HLCOrder: hlcOrder, StrictPartitions: strict, Limit: 1, Owner: "w",
						Token: uuid.New(), Now: now, LeaseUntil: now.Add(time.Minute)})
					if err != nil {
						b.Fatal(err)
					}
					if len(leases) == 0 {
						b.StopTimer()
						refill(n)
						n += 10_000
						b.StartTimer()
						continue
					}
					if err := db.TransitionJob(ctx, driver.Transition{JobID: leases[0].JobID, Token: leases[0].Token, Status: driver.StatusSucceeded, Now: now}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
