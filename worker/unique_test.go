package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

type orderArgs struct {
	Customer string `json:"customer"`
	Note     string `json:"note"`
}

func (orderArgs) Kind() string { return "test.order" }

// Issue 15: the user says what "the same job" means. By default the same
// args are one job for ever; ByFields, ByPeriod and ByState narrow or
// widen that, None turns it off, and none of them is ever a silent match
// of another payload under a caller's key.
func TestUniqueOpts(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		q := e.queue("node-a")
		insert := func(args orderArgs, u worker.UniqueOpts) queue.EnqueueResult {
			t.Helper()
			r, err := worker.Insert(ctx, q, "acme", args, &worker.InsertOpts{Unique: u})
			if err != nil {
				t.Fatalf("insert %+v with %+v: %v", args, u, err)
			}
			return r
		}
		a := orderArgs{Customer: "ada", Note: "first"}

		// The default: the same args are the same job.
		d1 := insert(a, worker.UniqueOpts{})
		if d2 := insert(a, worker.UniqueOpts{}); !d2.Deduplicated || d2.JobID != d1.JobID {
			t.Fatalf("default, the same args twice: %+v then %+v", d1, d2)
		}

		// ByFields: only the customer decides.
		byCustomer := worker.UniqueOpts{ByFields: []string{"customer"}}
		f1 := insert(a, byCustomer)
		if f1.Deduplicated || f1.JobID == d1.JobID {
			t.Fatalf("ByFields is its own identity: %+v (default job %s)", f1, d1.JobID)
		}
		if f2 := insert(orderArgs{Customer: "ada", Note: "second"}, byCustomer); !f2.Deduplicated || f2.JobID != f1.JobID {
			t.Fatalf("ByFields, another note: %+v, want job %s", f2, f1.JobID)
		}
		if f3 := insert(orderArgs{Customer: "bob"}, byCustomer); f3.Deduplicated {
			t.Fatalf("ByFields, another customer: %+v, want a new job", f3)
		}

		// ByPeriod: one job per hour, on the queue's clock.
		hourly := worker.UniqueOpts{ByPeriod: time.Hour}
		p1 := insert(a, hourly)
		e.wall.Advance(10 * time.Minute)
		if p2 := insert(a, hourly); !p2.Deduplicated || p2.JobID != p1.JobID {
			t.Fatalf("ByPeriod, the same hour: %+v, want job %s", p2, p1.JobID)
		}
		e.wall.Advance(time.Hour)
		if p3 := insert(a, hourly); p3.Deduplicated {
			t.Fatalf("ByPeriod, the next hour: %+v, want a new job", p3)
		}

		// ByState: unique while it waits or runs; once it ran, the same
		// args make a new job, which is then the one matched.
		live := worker.UniqueOpts{ByState: []queue.Status{queue.StatusPending, queue.StatusScheduled, queue.StatusRunning}}
		s1 := insert(orderArgs{Customer: "cy"}, live)
		if s2 := insert(orderArgs{Customer: "cy"}, live); !s2.Deduplicated || s2.JobID != s1.JobID {
			t.Fatalf("ByState, while pending: %+v, want job %s", s2, s1.JobID)
		}
		seen := map[string]bool{s1.JobID.String(): true}
		last := s1
		for round := range 5 { // generations 1..5: the probe's doubling and halving
			leases, err := q.Dequeue(ctx, queue.DequeueOptions{Kinds: []string{"test.order"}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			ran := false
			for _, l := range leases {
				if err := q.Complete(ctx, l); err != nil {
					t.Fatal(err)
				}
				ran = ran || l.JobID == last.JobID
			}
			if !ran {
				t.Fatalf("round %d: job %s was not handed out", round, last.JobID)
			}
			next := insert(orderArgs{Customer: "cy"}, live)
			if next.Deduplicated || seen[next.JobID.String()] {
				t.Fatalf("round %d: ByState after the job ran: %+v, want a new job", round, next)
			}
			seen[next.JobID.String()] = true
			if again := insert(orderArgs{Customer: "cy"}, live); !again.Deduplicated || again.JobID != next.JobID {
				t.Fatalf("round %d: ByState, the new job pending: %+v, want %s", round, again, next.JobID)
			}
			last = next
		}

		// None: every insert is a new job.
		if n1, n2 := insert(a, worker.UniqueOpts{None: true}), insert(a, worker.UniqueOpts{None: true}); n1.Deduplicated || n2.Deduplicated || n1.JobID == n2.JobID {
			t.Fatalf("None: %+v and %+v, want two jobs", n1, n2)
		}

		// A caller's key with another payload is a conflict, ByPeriod or not.
		keyed := &worker.InsertOpts{IdempotencyKey: "order-1", Unique: hourly}
		if _, err := worker.Insert(ctx, q, "acme", a, keyed); err != nil {
			t.Fatal(err)
		}
		if _, err := worker.Insert(ctx, q, "acme", orderArgs{Customer: "ada", Note: "changed"}, keyed); !errors.Is(err, queue.ErrIdempotencyConflict) {
			t.Fatalf("the caller's key, another payload: %v; want ErrIdempotencyConflict", err)
		}

		// Refusals: ByState inside a transaction, None with others, bad args.
		if _, err := worker.InsertTx(ctx, q, nil, "acme", a, &worker.InsertOpts{Unique: live}); err == nil || !strings.Contains(err.Error(), "ByState") {
			t.Fatalf("InsertTx with ByState: %v", err)
		}
		if _, err := worker.Insert(ctx, q, "acme", a, &worker.InsertOpts{Unique: worker.UniqueOpts{None: true, ByPeriod: time.Hour}}); err == nil {
			t.Fatal("None with ByPeriod: no error")
		}
		if _, err := worker.Insert(ctx, q, "acme", a, &worker.InsertOpts{Unique: worker.UniqueOpts{ByState: []queue.Status{"done"}}}); err == nil || !strings.Contains(err.Error(), "done") {
			t.Fatalf("ByState with an unknown state: %v", err)
		}
	})
}
