package ordotest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/ordotest"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
	"github.com/ordo-sched/ordo/worker"
)

type SignupArgs struct {
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

func (SignupArgs) Kind() string { return "signup.welcome" }

// fakeTB records a helper's failure instead of failing the test, so that
// the test can assert that an assertion fails, and what it says.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// fails runs fn with a fakeTB and returns the failure it reported ("" for none).
func fails(t *testing.T, fn func(tb testing.TB)) string {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func openQueue(t *testing.T, url string, wall hlc.WallClock) *queue.Queue {
	t.Helper()
	q, err := ordo.Open(context.Background(), url, ordo.Config{Node: "test-node", Hlc: queue.Options{EnableHlcOrdering: true}, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// Issue 15: the helpers see what the code under test enqueued, in the
// database or in a transaction it has not committed; say what they saw
// instead when the job is not there; and run the next job as a client
// would, its outcome recorded.
func TestHelpers(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		wall := hlc.NewManualClock(time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC).UnixMilli())
		q := openQueue(t, url, wall)
		ada := SignupArgs{Email: "ada@example.com", Plan: "pro"}
		if _, err := worker.Insert(ctx, q, "acme", ada, nil); err != nil {
			t.Fatal(err)
		}
		if got := ordotest.RequireInserted(t, q, "acme", ada); got.Args != ada || got.Status != queue.StatusPending {
			t.Fatalf("RequireInserted returned %+v", got)
		}
		msg := fails(t, func(tb testing.TB) { ordotest.RequireInserted(tb, q, "acme", SignupArgs{Email: "bob@example.com"}) })
		if !strings.Contains(msg, "no signup.welcome job") || !strings.Contains(msg, "ada@example.com") {
			t.Fatalf("a missing job: %q; want a failure listing what was enqueued", msg)
		}
		if msg := fails(t, func(tb testing.TB) { ordotest.RequireInserted(tb, q, "globex", ada) }); !strings.Contains(msg, "enqueued: none") {
			t.Fatalf("another tenant's view: %q", msg)
		}

		// In a transaction not yet committed, then rolled back.
		var tx any
		var rollback func() error
		switch db := q.Backend().(type) {
		case *postgres.DB:
			ptx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tx, rollback = ptx, func() error { return ptx.Rollback(ctx) }
		case *sqlite.DB:
			stx, err := db.SQL.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			tx, rollback = stx, stx.Rollback
		}
		cy := SignupArgs{Email: "cy@example.com", Plan: "free"}
		if _, err := worker.InsertTx(ctx, q, tx, "acme", cy, nil); err != nil {
			t.Fatal(err)
		}
		if got := ordotest.RequireInsertedTx(t, tx, "acme", cy); got != cy {
			t.Fatalf("RequireInsertedTx returned %+v", got)
		}
		if err := rollback(); err != nil {
			t.Fatal(err)
		}
		if msg := fails(t, func(tb testing.TB) { ordotest.RequireInserted(tb, q, "acme", cy) }); msg == "" {
			t.Fatal("a job whose transaction rolled back is found in the database")
		}

		// WorkNext: a failure is retried, a success completes.
		calls := 0
		w := worker.WorkFunc[SignupArgs](func(ctx context.Context, job *worker.Job[SignupArgs]) error {
			calls++
			if calls == 1 {
				return errors.New("mail server down")
			}
			return nil
		})
		job, res := ordotest.WorkNext(t, q, "acme", w)
		if res.Outcome != worker.OutcomeFailed || job.Args != ada || job.Status != queue.StatusScheduled || job.LastError != "mail server down" {
			t.Fatalf("first run: %+v, job %+v", res, job.JobInfo)
		}
		if msg := fails(t, func(tb testing.TB) { ordotest.WorkNext(tb, q, "acme", w) }); !strings.Contains(msg, "is due") {
			t.Fatalf("no job due (the retry waits for its backoff): %q", msg)
		}
		jobs, err := ordotest.Inserted[SignupArgs](ctx, q, "acme")
		if err != nil || len(jobs) != 1 || jobs[0].Attempts != 1 {
			t.Fatalf("Inserted: %+v, %v", jobs, err)
		}
		wall.Advance(time.Hour) // past the retry's backoff
		if job, res := ordotest.WorkNext(t, q, "acme", w); res.Outcome != worker.OutcomeSucceeded || job.Status != queue.StatusSucceeded || job.Attempts != 2 {
			t.Fatalf("second run: %+v, job %+v", res, job.JobInfo)
		}
	})
}
