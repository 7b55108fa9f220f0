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

type greetArgs struct {
	Name    string        `json:"name"`
	secret  string        // unexported: lost on the way through the queue
	Verdict string        `json:"verdict"`
	Limit   time.Duration `json:"limit"`
}

func (greetArgs) Kind() string { return "test.greet" }

func (a greetArgs) Timeout() time.Duration { return a.Limit }

func TestWorkClassifiesLikeTheClient(t *testing.T) {
	ctx := context.Background()
	var seen greetArgs
	w := worker.WorkFunc[greetArgs](func(ctx context.Context, j *worker.Job[greetArgs]) error {
		seen = j.Args
		switch j.Args.Verdict {
		case "fail":
			return errors.New("smtp down")
		case "noretry":
			return worker.NoRetry(errors.New("no such mailbox"))
		case "cancel":
			return worker.JobCancel(nil)
		case "snooze":
			return worker.JobSnooze(time.Minute)
		case "panic":
			var m map[string]int
			m["x"] = 1
		case "slow":
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	for _, c := range []struct {
		verdict string
		want    worker.Outcome
		err     string
	}{
		{"", worker.OutcomeSucceeded, ""},
		{"fail", worker.OutcomeFailed, "smtp down"},
		{"noretry", worker.OutcomeDiscarded, "no such mailbox"},
		{"cancel", worker.OutcomeCancelled, "job cancelled by its handler"},
		{"snooze", worker.OutcomeSnoozed, "job snoozed for 1m0s"},
		{"panic", worker.OutcomeFailed, "panic: assignment to entry in nil map"},
		{"slow", worker.OutcomeFailed, "timed out after 10ms: context deadline exceeded"},
	} {
		res := worker.Work(ctx, w, greetArgs{Name: "Ada", secret: "s", Verdict: c.verdict, Limit: 10 * time.Millisecond})
		if res.Outcome != c.want {
			t.Errorf("%q: outcome %v, want %v (err %v)", c.verdict, res.Outcome, c.want, res.Err)
		}
		if c.err == "" && res.Err != nil || c.err != "" && (res.Err == nil || !strings.HasPrefix(res.Err.Error(), c.err)) {
			t.Errorf("%q: err %v, want %q", c.verdict, res.Err, c.err)
		}
		if c.verdict == "snooze" && res.SnoozeFor != time.Minute {
			t.Errorf("snooze for %v", res.SnoozeFor)
		}
	}
	if seen.Name != "Ada" || seen.secret != "" {
		t.Errorf("the handler saw %+v; Work should make the JSON round trip the queue makes", seen)
	}

	// WorkJob takes a job as built, to test what a handler does on, say,
	// its last attempt.
	last := worker.WorkFunc[greetArgs](func(ctx context.Context, j *worker.Job[greetArgs]) error {
		if j.Attempt == j.MaxAttempts {
			return worker.NoRetry(errors.New("giving up"))
		}
		return errors.New("try again")
	})
	res := worker.WorkJob(ctx, last, &worker.Job[greetArgs]{Lease: queue.Lease{Attempt: 3, MaxAttempts: 3}})
	if res.Outcome != worker.OutcomeDiscarded {
		t.Errorf("last attempt: %v", res.Outcome)
	}
}

type badKind struct{}

func (badKind) Kind() string { return "9lives" }

type ptrKind struct{ name string }

func (p *ptrKind) Kind() string { return p.name }

type okArgs struct{}

func (okArgs) Kind() string { return "test.ok" }

func TestRegistrationErrors(t *testing.T) {
	w := worker.NewWorkers()
	nop := func(ctx context.Context, j *worker.Job[okArgs]) error { return nil }
	if err := worker.AddWorkerSafely(w, worker.WorkFunc[okArgs](nop)); err != nil {
		t.Fatal(err)
	}
	if err := worker.AddWorkerSafely(w, worker.WorkFunc[okArgs](nop)); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate kind: %v", err)
	}
	if err := worker.AddFuncSafely(w, "test.ok", func(ctx context.Context, l *queue.Lease) error { return nil }); err == nil {
		t.Error("AddFunc of a kind registered by AddWorker succeeded")
	}
	if err := worker.AddWorkerSafely(w, worker.WorkFunc[badKind](func(ctx context.Context, j *worker.Job[badKind]) error { return nil })); err == nil ||
		!strings.Contains(err.Error(), "must start with a letter") {
		t.Errorf("invalid kind: %v", err)
	}
	if err := worker.AddWorkerSafely(w, worker.WorkFunc[*ptrKind](func(ctx context.Context, j *worker.Job[*ptrKind]) error { return nil })); err == nil ||
		!strings.Contains(err.Error(), "value receiver") {
		t.Errorf("Kind on a nil pointer: %v", err)
	}
	if err := worker.AddFuncSafely(w, "test.func", func(ctx context.Context, l *queue.Lease) error { return nil },
		worker.KindOptions{}, worker.KindOptions{}); err == nil {
		t.Error("two KindOptions accepted")
	}
	if got := strings.Join(w.Kinds(), ","); got != "test.ok" {
		t.Errorf("kinds %s", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("AddWorker of a duplicate did not panic")
			}
		}()
		worker.AddWorker(w, worker.WorkFunc[okArgs](nop))
	}()
}

func TestConfigErrors(t *testing.T) {
	w := worker.NewWorkers()
	worker.AddFunc(w, "test.mail", func(ctx context.Context, l *queue.Lease) error { return nil }, worker.KindOptions{Queue: "mail"})
	q := &queue.Queue{} // never used: NewClient fails first
	for _, c := range []struct {
		cfg  worker.Config
		want string
	}{
		{worker.Config{Workers: w}, `registered to queue "mail", which Config.Queues does not define`},
		{worker.Config{Workers: w, Queues: map[string]worker.QueueConfig{"mail": {}}, LeaseFor: time.Millisecond}, "LeaseFor"},
		{worker.Config{Queues: map[string]worker.QueueConfig{"a": {AllKinds: true}, "b": {AllKinds: true}}}, "AllKinds"},
		{worker.Config{PeriodicJobs: []worker.PeriodicJob{{Name: "x", Schedule: worker.Every(time.Hour), TenantID: "bad tenant",
			Args: func(time.Time) (worker.Args, *worker.InsertOpts) { return okArgs{}, nil }}}}, "tenant_id"},
		{worker.Config{MaintenanceInterval: time.Minute, LeaderTTL: time.Second}, "LeaderTTL"},
	} {
		_, err := worker.NewClient(q, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewClient: %v, want an error about %s", err, c.want)
		}
	}
}
