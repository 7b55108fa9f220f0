package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/queue"
)

// TestDequeueNeverWaitsForTheOtherSide: during a mode switch one node
// reads the HLC side and another the legacy side of one dual-written
// backlog. Each dequeue locks its own side's row of a job and then needs
// the other side's; if it waited for it, the two would deadlock (each
// holding what the other waits for; PostgreSQL logged 8 deadlocks in 35 s,
// a second each). A dequeue must instead skip a job whose other row is
// held, and take it on a later fetch.
func TestDequeueNeverWaitsForTheOtherSide(t *testing.T) {
	ctx := context.Background()
	qs := newQueues(t)
	db, wall := qs.db, qs.wall
	hlcReader := qs.queue(queue.Options{EnableHlcOrdering: true, DualWriteMode: true})
	legacyReader := qs.queue(queue.Options{DualWriteMode: true})

	for _, c := range []struct {
		name   string
		reader *queue.Queue
		held   string // the other side's row, held by another transaction
	}{
		{"hlc reader, legacy row held", hlcReader, `SELECT 1 FROM scheduler.jobs WHERE id = $1 FOR UPDATE`},
		{"legacy reader, hlc row held", legacyReader, `SELECT 1 FROM scheduler.job_state WHERE job_id = $1 FOR UPDATE`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ids []uuid.UUID
			for i := range 3 {
				r, err := hlcReader.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(fmt.Sprintf(`{"case":%q,"n":%d}`, c.name, i))})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.JobID)
				wall.Advance(time.Millisecond)
			}
			held := ids[0] // the first in both read orders
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			if _, err := tx.Exec(ctx, c.held, held); err != nil {
				t.Fatal(err)
			}

			// A wait would last until the holder ends, which here is after
			// the deadline: the dequeue must answer without waiting.
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			leases, err := c.reader.Dequeue(dctx, queue.DequeueOptions{Limit: 3})
			if err != nil {
				t.Fatalf("dequeue while the other side's row is held: %v", err)
			}
			if len(leases) != 2 {
				t.Fatalf("leased %d jobs, want the 2 whose rows are free", len(leases))
			}
			for _, l := range leases {
				if l.JobID == held {
					t.Fatalf("leased %s, whose other row another transaction holds", held)
				}
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			leases, err = c.reader.Dequeue(ctx, queue.DequeueOptions{Limit: 3})
			if err != nil || len(leases) != 1 || leases[0].JobID != held {
				t.Fatalf("after the holder ended: %v, %v; want the skipped job %s", leases, err, held)
			}
		})
	}
}
