package worker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

type traceKey struct{}

// Issue 15: middleware wraps every insert and every job's run, the first
// outermost, as net/http handlers wrap each other: it sees the jobs and
// the lease, may pass a changed ctx or jobs on, may refuse an insert, and
// what it returns is the job's outcome.
func TestMiddleware(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var mu sync.Mutex
		var trail []string
		note := func(s string) {
			mu.Lock()
			trail = append(trail, s)
			mu.Unlock()
		}
		w := handling(func(ctx context.Context, job *worker.Job[ledgerArgs]) error {
			note("handler sees " + ctx.Value(traceKey{}).(string))
			if job.Args.Account == "flaky" {
				return errors.New("the handler failed")
			}
			return nil
		})
		q, rec, cfg := e.nodeA(t, w)
		cfg.WorkMiddleware = []worker.WorkMiddleware{
			func(ctx context.Context, l *queue.Lease, next func(context.Context) error) error {
				note("outer before " + l.Kind)
				err := next(context.WithValue(ctx, traceKey{}, "trace-"+l.JobID.String()[:4]))
				note("outer after: " + err.Error())
				return nil // swallows the handler's error: the job succeeds
			},
			func(ctx context.Context, l *queue.Lease, next func(context.Context) error) error {
				note("inner before")
				err := next(ctx)
				note("inner after")
				return err
			},
		}
		cfg.InsertMiddleware = []worker.InsertMiddleware{
			func(ctx context.Context, jobs []queue.Job, next func(context.Context, []queue.Job) ([]queue.EnqueueResult, error)) ([]queue.EnqueueResult, error) {
				for _, j := range jobs {
					if j.TenantID == "blocked" {
						return nil, errors.New("tenant blocked by policy")
					}
				}
				for i := range jobs {
					jobs[i].Priority = 7 // stamped on every insert
				}
				return next(ctx, jobs)
			},
		}
		c := startClient(t, q, cfg)
		res, err := c.Insert(ctx, "acme", ledgerArgs{Account: "flaky"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := q.Get(ctx, res.JobID); err != nil || info.Priority != 7 {
			t.Fatalf("the insert middleware's change did not land: %+v, %v", info, err)
		}
		rec.await(t, "the job to succeed (its error swallowed by middleware)", is(worker.EventJobSucceeded, res.JobID))
		mu.Lock()
		got := slices.Clone(trail)
		mu.Unlock()
		want := []string{"outer before test.ledger", "inner before", "handler sees trace-" + res.JobID.String()[:4], "inner after", "outer after: the handler failed"}
		if !slices.Equal(got, want) {
			t.Fatalf("the chain ran %q, want %q", got, want)
		}
		if _, err := c.Insert(ctx, "blocked", ledgerArgs{Account: "x"}, nil); err == nil || err.Error() != "tenant blocked by policy" {
			t.Fatalf("a refused insert: %v", err)
		}
		if _, err := c.InsertMany(ctx, []worker.InsertManyParams{{TenantID: "acme", Args: ledgerArgs{Account: "y"}}, {TenantID: "blocked", Args: ledgerArgs{Account: "z"}}}); err == nil {
			t.Fatal("a refused InsertMany: no error")
		}
		if n := e.jobCount("test.ledger"); n != 1 {
			t.Fatalf("%d ledger jobs, want only the first: refused inserts wrote nothing", n)
		}
	})
}
