package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

func newQueue(t *testing.T, opts queue.Options) (*queue.Queue, *hlc.ManualClock) {
	t.Helper()
	ctx := context.Background()
	db := openMigrated(t)
	wall := hlc.NewManualClock(1_704_067_200_000)
	clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: opts, Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	return q, wall
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
