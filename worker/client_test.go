package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

type flakyArgs struct {
	FailTimes int `json:"fail_times"`
}

func (flakyArgs) Kind() string { return "test.flaky" }

// flaky fails its first FailTimes attempts with "boom <attempt>".
var flaky = worker.WorkFunc[flakyArgs](func(ctx context.Context, j *worker.Job[flakyArgs]) error {
	if j.Attempt <= j.Args.FailTimes {
		return fmt.Errorf("boom %d", j.Attempt)
	}
	return nil
})

func TestRetriesBackOffOnTheQueueClock(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := worker.NewWorkers()
		worker.AddWorker(w, flaky)
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		id := insert(t, c, flakyArgs{FailTimes: 2}, nil)

		// The queue's default backoff: 1s then 2s, each +-25%, on the fake
		// clock, which only the test moves.
		for _, step := range []struct {
			attempt int
			base    time.Duration
		}{{1, time.Second}, {2, 2 * time.Second}} {
			ev := rec.await(t, fmt.Sprintf("failed attempt %d", step.attempt), isAttempt(worker.EventJobFailed, id, step.attempt))
			if !ev.Retried || ev.Err == nil || ev.Err.Error() != fmt.Sprintf("boom %d", step.attempt) {
				t.Fatalf("attempt %d: retried=%v err=%v", step.attempt, ev.Retried, ev.Err)
			}
			delay := ev.RetryAt.Sub(e.now())
			if lo, hi := step.base*3/4-time.Millisecond, step.base*5/4; delay < lo || delay > hi {
				t.Fatalf("attempt %d: retry in %v, want %v..%v", step.attempt, delay, lo, hi)
			}
			info := get(t, q, id)
			if info.Status != queue.StatusScheduled || info.Attempts != step.attempt || info.LastError != ev.Err.Error() {
				t.Fatalf("after attempt %d: status %s, attempts %d, last error %q", step.attempt, info.Status, info.Attempts, info.LastError)
			}
			// A millisecond before the backoff ends the job is not due.
			e.wall.Set(ev.RetryAt.UnixMilli() - 1)
			if n := c.FetchNow(worker.DefaultQueue); n != 0 {
				t.Fatalf("attempt %d: a fetch 1ms before the retry time started %d jobs", step.attempt, n)
			}
			e.wall.Set(ev.RetryAt.UnixMilli())
		}
		ev := rec.await(t, "success on attempt 3", isAttempt(worker.EventJobSucceeded, id, 3))
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if info := get(t, q, id); info.Status != queue.StatusSucceeded || info.Attempts != 3 {
			t.Fatalf("status %s attempts %d, want succeeded after 3", info.Status, info.Attempts)
		}
		if starts := rec.all(is(worker.EventJobStarted, id)); len(starts) != 3 {
			t.Fatalf("%d starts, want 3", len(starts))
		}
	})
}

type doomedArgs struct{}

func (doomedArgs) Kind() string { return "test.doomed" }

func TestTerminalFailureAfterMaxAttemptsWithKindBackoff(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(func(ctx context.Context, j *worker.Job[doomedArgs]) error {
			return fmt.Errorf("doomed, attempt %d", j.Attempt)
		}, worker.KindOptions{MaxAttempts: 3, Backoff: func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }})
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		id := insert(t, c, doomedArgs{}, nil)
		for attempt := 1; attempt <= 3; attempt++ {
			ev := rec.await(t, fmt.Sprintf("failed attempt %d", attempt), isAttempt(worker.EventJobFailed, id, attempt))
			if want := fmt.Sprintf("doomed, attempt %d", attempt); ev.Err == nil || ev.Err.Error() != want {
				t.Fatalf("attempt %d: error %v, want %q", attempt, ev.Err, want)
			}
			if attempt == 3 {
				if ev.Retried {
					t.Fatal("the last attempt was retried")
				}
				break
			}
			if want := e.now().Add(time.Duration(attempt) * time.Minute); !ev.Retried || !ev.RetryAt.Equal(want) {
				t.Fatalf("attempt %d: retried %v at %v, want the kind's backoff: %v", attempt, ev.Retried, ev.RetryAt, want)
			}
			e.wall.Advance(time.Duration(attempt) * time.Minute)
		}
		info := get(t, q, id)
		if info.Status != queue.StatusFailed || info.Attempts != 3 || info.MaxAttempts != 3 || info.LastError != "doomed, attempt 3" {
			t.Fatalf("status %s attempts %d/%d last error %q; want failed 3/3 (max attempts from the kind's options)", info.Status, info.Attempts, info.MaxAttempts, info.LastError)
		}
	})
}

type verdictArgs struct {
	Verdict string `json:"verdict"` // noretry, cancel, snooze, panic
}

func (verdictArgs) Kind() string { return "test.verdict" }

func TestHandlerVerdicts(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var snoozes atomic.Int32
		w := handling(func(ctx context.Context, j *worker.Job[verdictArgs]) error {
			switch j.Args.Verdict {
			case "noretry":
				return fmt.Errorf("wrapped: %w", worker.NoRetry(errors.New("bad input")))
			case "cancel":
				return worker.JobCancel(errors.New("customer gone"))
			case "snooze":
				if snoozes.Add(1) == 1 {
					return worker.JobSnooze(30 * time.Second)
				}
				return nil
			case "panic":
				if j.Attempt == 1 {
					panic("kaboom")
				}
				return nil
			}
			return errors.New("unexpected verdict")
		})
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)

		noRetry := insert(t, c, verdictArgs{"noretry"}, nil)
		ev := rec.await(t, "no-retry failure", is(worker.EventJobFailed, noRetry))
		if ev.Retried || !strings.Contains(ev.Err.Error(), "bad input") {
			t.Fatalf("NoRetry: retried %v, err %v", ev.Retried, ev.Err)
		}
		if info := get(t, q, noRetry); info.Status != queue.StatusFailed || info.Attempts != 1 || info.MaxAttempts != 25 {
			t.Fatalf("NoRetry: status %s, attempts %d/%d; want failed on attempt 1 of 25", info.Status, info.Attempts, info.MaxAttempts)
		}

		cancelled := insert(t, c, verdictArgs{"cancel"}, nil)
		rec.await(t, "cancellation", is(worker.EventJobCancelled, cancelled))
		if info := get(t, q, cancelled); info.Status != queue.StatusCancelled || info.LastError != "customer gone" {
			t.Fatalf("JobCancel: status %s, last error %q", info.Status, info.LastError)
		}

		snoozed := insert(t, c, verdictArgs{"snooze"}, nil)
		ev = rec.await(t, "snooze", is(worker.EventJobSnoozed, snoozed))
		if want := e.now().Add(30 * time.Second); !ev.RetryAt.Equal(want) {
			t.Fatalf("snoozed until %v, want %v", ev.RetryAt, want)
		}
		if info := get(t, q, snoozed); info.Status != queue.StatusScheduled || info.Attempts != 0 {
			t.Fatalf("JobSnooze: status %s, attempts %d; want scheduled with the attempt not counted", info.Status, info.Attempts)
		}
		e.wall.Advance(30 * time.Second)
		ev = rec.await(t, "success after the snooze", is(worker.EventJobSucceeded, snoozed))
		if ev.Lease.Attempt != 1 {
			t.Fatalf("after a snooze the job ran as attempt %d, want 1", ev.Lease.Attempt)
		}

		panicked := insert(t, c, verdictArgs{"panic"}, nil)
		ev = rec.await(t, "panic", is(worker.EventJobFailed, panicked))
		var pe *worker.PanicError
		if !errors.As(ev.Err, &pe) || pe.Value != "kaboom" || !ev.Retried {
			t.Fatalf("panic: err %v (%T), retried %v", ev.Err, ev.Err, ev.Retried)
		}
		info := get(t, q, panicked)
		if !strings.HasPrefix(info.LastError, "panic: kaboom") || !strings.Contains(info.LastError, "client_test.go") {
			t.Fatalf("a panic's last error should hold the value and the stack, got %q", info.LastError)
		}
		e.wall.Set(ev.RetryAt.UnixMilli())
		rec.await(t, "success after the panic", isAttempt(worker.EventJobSucceeded, panicked, 2))
	})
}

type typedArgs struct {
	N int `json:"n"`
}

func (typedArgs) Kind() string { return "test.typed" }

func TestUnknownKindAndUndecodablePayloadFailWithoutRetry(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(succeed[typedArgs])
		q, rec, cfg := e.nodeA(t, w)
		cfg.Queues = map[string]worker.QueueConfig{worker.DefaultQueue: {AllKinds: true}}
		startClient(t, q, cfg)
		ctx := context.Background()
		unknown, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "nobody.home", Payload: []byte(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		garbled, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "test.typed", Payload: []byte(`{"n":"seven"}`)})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   uuid.UUID
			want string
		}{
			{unknown.JobID, `no worker is registered for kind "nobody.home"`},
			{garbled.JobID, `payload of job kind "test.typed" does not decode into worker_test.typedArgs`},
		} {
			ev := rec.await(t, "failure of "+c.want, is(worker.EventJobFailed, c.id))
			if ev.Retried {
				t.Errorf("%s: retried", c.want)
			}
			info := get(t, q, c.id)
			if info.Status != queue.StatusFailed || info.Attempts != 1 || !strings.Contains(info.LastError, c.want) {
				t.Errorf("status %s attempts %d last error %q; want failed on attempt 1 with %q", info.Status, info.Attempts, info.LastError, c.want)
			}
		}
	})
}

type sleepyArgs struct {
	Obedient bool          `json:"obedient"` // returns when its context ends
	Limit    time.Duration `json:"limit"`
}

func (sleepyArgs) Kind() string { return "test.sleepy" }

// Timeout gives a per-job timeout, overriding the kind's.
func (a sleepyArgs) Timeout() time.Duration { return a.Limit }

type quickArgs struct{}

func (quickArgs) Kind() string { return "test.quick" }

func TestTimeoutsAbandonHandlersThatIgnoreTheirContext(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		stuck := make(chan struct{})
		t.Cleanup(func() { close(stuck) }) // let the abandoned goroutine end
		w := handling(func(ctx context.Context, j *worker.Job[sleepyArgs]) error {
			if j.Args.Obedient {
				<-ctx.Done()
				return ctx.Err()
			}
			<-stuck
			return nil
		}, worker.KindOptions{Timeout: 150 * time.Millisecond})
		worker.AddWorker(w, worker.WorkFunc[quickArgs](succeed[quickArgs]))
		q, rec, cfg := e.nodeA(t, w)
		cfg.MaxWorkers = 1 // the abandoned handler must give its slot back
		c := startClient(t, q, cfg)

		ignorer := insert(t, c, sleepyArgs{}, nil)
		ev := rec.await(t, "timeout of the handler that ignores its context", is(worker.EventJobFailed, ignorer))
		var te *worker.TimeoutError
		if !errors.As(ev.Err, &te) || !te.Abandoned || te.Timeout != 150*time.Millisecond || !ev.Abandoned || !ev.Retried {
			t.Fatalf("err %v, abandoned %v, retried %v", ev.Err, ev.Abandoned, ev.Retried)
		}
		if info := get(t, q, ignorer); !strings.HasPrefix(info.LastError, "timed out after 150ms") || info.Attempts != 1 {
			t.Fatalf("last error %q attempts %d", info.LastError, info.Attempts)
		}
		quick := insert(t, c, quickArgs{}, nil)
		rec.await(t, "a job run in the slot the abandoned handler left", is(worker.EventJobSucceeded, quick))

		obedient := insert(t, c, sleepyArgs{Obedient: true, Limit: 50 * time.Millisecond}, nil)
		ev = rec.await(t, "timeout of the handler that returns", is(worker.EventJobFailed, obedient))
		if !errors.As(ev.Err, &te) || te.Abandoned || te.Timeout != 50*time.Millisecond || !errors.Is(ev.Err, context.DeadlineExceeded) {
			t.Fatalf("err %v; want a per-job timeout of 50ms, not abandoned", ev.Err)
		}
		if info := get(t, q, obedient); info.LastError != "timed out after 50ms: context deadline exceeded" {
			t.Fatalf("last error %q", info.LastError)
		}
	})
}

type blockArgs struct {
	Obedient bool `json:"obedient"`
	N        int  `json:"n"`
}

func (blockArgs) Kind() string { return "test.block" }

func TestGracefulStopLetsRunningJobsFinish(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		release := make(chan struct{})
		w := handling(func(ctx context.Context, j *worker.Job[blockArgs]) error {
			<-release
			return nil
		})
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		var ids []uuid.UUID
		for i := range 3 {
			ids = append(ids, insert(t, c, blockArgs{N: i}, nil))
		}
		for _, id := range ids {
			rec.await(t, "start", is(worker.EventJobStarted, id))
		}
		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			stopped <- c.Stop(ctx)
		}()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while jobs were running", err)
		default:
		}
		close(release)
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("graceful Stop: %v", err)
			}
		case <-time.After(waitFor):
			t.Fatal("Stop did not return after the jobs finished")
		}
		for _, id := range ids {
			if info := get(t, q, id); info.Status != queue.StatusSucceeded {
				t.Errorf("job %s is %s after a graceful stop, want succeeded", short(id), info.Status)
			}
		}
	})
}

func TestStopOutOfTimeHandsRunningJobsBack(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		stuck := make(chan struct{})
		t.Cleanup(func() { close(stuck) })
		w := handling(func(ctx context.Context, j *worker.Job[blockArgs]) error {
			if j.Args.Obedient {
				<-ctx.Done()
				return ctx.Err() // must not count as a failed attempt
			}
			<-stuck
			return nil
		})
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		ids := []uuid.UUID{insert(t, c, blockArgs{Obedient: true}, nil), insert(t, c, blockArgs{Obedient: false}, nil)}
		for _, id := range ids {
			rec.await(t, "start", is(worker.EventJobStarted, id))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := c.Stop(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want an error wrapping the context's", err)
		}
		for _, id := range ids {
			rec.await(t, "release", is(worker.EventJobReleased, id))
			info := get(t, q, id)
			if info.Status != queue.StatusPending || info.Attempts != 0 || info.LeaseOwner != "" {
				t.Fatalf("job %s after stop: status %s attempts %d owner %q; want pending, attempt given back, no lease", short(id), info.Status, info.Attempts, info.LeaseOwner)
			}
		}
		if failed := rec.all(is(worker.EventJobFailed, uuid.UUID{})); len(failed) > 0 {
			t.Fatalf("a job interrupted by Stop was recorded as failed: %v", failed[0].Err)
		}

		// Another client picks them up at once: no lease to wait out.
		w2 := handling(succeed[blockArgs])
		startClient(t, e.queue("node-b"), testConfig(w2, rec, "b", logs(t)))
		for _, id := range ids {
			rec.await(t, "the handed-back job done by another client", isAttempt(worker.EventJobSucceeded, id, 1))
		}
	})
}

type slowArgs struct{}

func (slowArgs) Kind() string { return "test.slow" }

func TestHeartbeatsKeepALongJobsLease(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		release := make(chan struct{})
		w := handling(func(ctx context.Context, j *worker.Job[slowArgs]) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, worker.KindOptions{Timeout: -1})
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		id := insert(t, c, slowArgs{}, nil)
		started := rec.await(t, "start", is(worker.EventJobStarted, id))
		firstExpiry := started.Lease.ExpiresAt

		e.wall.Advance(20 * time.Second)
		want := e.now().Add(30 * time.Second)
		rec.await(t, "a heartbeat after the clock moved", func(ev tagged) bool {
			return is(worker.EventLeaseExtended, id)(ev) && !ev.Lease.ExpiresAt.Before(want)
		})
		e.wall.Advance(20 * time.Second) // past the lease the job was fetched with
		if !e.now().After(firstExpiry) {
			t.Fatalf("clock %v not past the first expiry %v", e.now(), firstExpiry)
		}
		rescued, failed, err := q.RescueExpired(context.Background())
		if err != nil || rescued+failed != 0 {
			t.Fatalf("RescueExpired took %d+%d jobs (%v) whose lease the heartbeat kept", rescued, failed, err)
		}
		if info := get(t, q, id); info.Status != queue.StatusRunning || info.LeaseToken != started.Lease.Token {
			t.Fatalf("status %s token %v, want still running under the first lease", info.Status, info.LeaseToken)
		}
		close(release)
		rec.await(t, "success", isAttempt(worker.EventJobSucceeded, id, 1))
		if lost := rec.all(is(worker.EventLeaseLost, id)); len(lost) > 0 {
			t.Fatal("lease lost")
		}
	})
}

type crashArgs struct{}

func (crashArgs) Kind() string { return "test.crash" }

func TestCrashedWorkersJobIsRerunAndItsLateCompleteRefused(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		late := make(chan struct{})
		handler := worker.WorkFunc[crashArgs](func(ctx context.Context, j *worker.Job[crashArgs]) error {
			if j.Attempt == 1 {
				<-late // a worker paused (GC, partition) past its lease
			}
			return nil
		})
		rec := newRecorder()
		wa := worker.NewWorkers()
		worker.AddWorker(wa, handler, worker.KindOptions{Timeout: -1})
		a := startClient(t, e.queue("node-a"), testConfig(wa, rec, "a", logs(t)))
		id := insert(t, a, crashArgs{}, nil)
		rec.await(t, "start on a", isAttempt(worker.EventJobStarted, id, 1))
		// Wait until a leads maintenance, so b has to wait for that lease
		// to lapse too, as after a real crash.
		rec.await(t, "a leading", func(ev tagged) bool { return ev.client == "a" && ev.Type == worker.EventLeadership && ev.Leader })
		a.Crash()

		wb := worker.NewWorkers()
		worker.AddWorker(wb, handler)
		qb := e.queue("node-b")
		startClient(t, qb, testConfig(wb, rec, "b", logs(t)))
		e.wall.Advance(31 * time.Second) // past a's job lease (30s) and leadership (10s)
		rec.await(t, "b rescuing", func(ev tagged) bool { return ev.client == "b" && ev.Type == worker.EventRescued && ev.Rescued == 1 })
		ev := rec.await(t, "the rerun on b", isAttempt(worker.EventJobSucceeded, id, 2))
		if ev.client != "b" || ev.Lease.Owner != "b" {
			t.Fatalf("attempt 2 ran on %s (owner %s)", ev.client, ev.Lease.Owner)
		}

		close(late)
		ev = rec.await(t, "a's late completion refused", is(worker.EventLeaseLost, id))
		if ev.client != "a" || !errors.Is(ev.Err, queue.ErrLeaseLost) {
			t.Fatalf("lease lost on %s with %v", ev.client, ev.Err)
		}
		info := get(t, qb, id)
		if info.Status != queue.StatusSucceeded || info.Attempts != 2 {
			t.Fatalf("status %s attempts %d, want succeeded on attempt 2", info.Status, info.Attempts)
		}
		if n := len(rec.all(is(worker.EventJobSucceeded, id))); n != 1 {
			t.Fatalf("%d successes recorded, want 1", n)
		}
	})
}

type fairArgs struct {
	I int `json:"i"`
}

func (fairArgs) Kind() string { return "test.fair" }

// runFairBacklog inserts bigJobs jobs of tenant "big", then smallJobs of
// tenant "small", runs them all on one client (slots sets its slots), and
// returns the number of the completion that finished the small tenant's
// last job: without fair sharing it would come after all of big's.
func runFairBacklog(t *testing.T, e *env, bigJobs, smallJobs int, slots func(*worker.Config)) int64 {
	t.Helper()
	ctx := context.Background()
	q := e.queue("node-a")
	big := make([]worker.InsertManyParams, bigJobs)
	for i := range big {
		big[i] = worker.InsertManyParams{TenantID: "big", Args: fairArgs{I: i}}
	}
	if _, err := worker.InsertMany(ctx, q, big); err != nil {
		t.Fatal(err)
	}
	var small []uuid.UUID
	for i := range smallJobs {
		res, err := worker.Insert(ctx, q, "small", fairArgs{I: i}, nil)
		if err != nil {
			t.Fatal(err)
		}
		small = append(small, res.JobID)
	}

	var mu sync.Mutex
	var done, smallLast int64
	w := handling(succeed[fairArgs])
	rec := newRecorder()
	cfg := testConfig(w, rec, "a", logs(t))
	slots(&cfg)
	cfg.OnEvent = func(ev worker.Event) {
		if ev.Type == worker.EventJobSucceeded {
			mu.Lock()
			done++
			if ev.Lease.TenantID == "small" {
				smallLast = max(smallLast, done)
			}
			mu.Unlock()
		}
		rec.hook("a")(ev)
	}
	startClient(t, q, cfg)
	for _, id := range small {
		rec.await(t, "the small tenant's jobs", is(worker.EventJobSucceeded, id))
	}
	mu.Lock()
	defer mu.Unlock()
	return smallLast
}

func TestFairSharingBetweenTenants(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		last := runFairBacklog(t, e, 10_000, 10, func(cfg *worker.Config) {
			cfg.MaxWorkers = 4
			// Slots freed within one cooldown are refilled by one fetch,
			// which the queue shares out between tenants.
			cfg.FetchCooldown = 20 * time.Millisecond
		})
		t.Logf("the small tenant's 10 jobs were done within the first %d completions", last)
		if last > 200 {
			t.Fatalf("the small tenant's last job was completion number %d; with fair sharing it should be within ~20, at most 200", last)
		}
	})
}

type orderedArgs struct {
	Seq int `json:"seq"`
}

func (orderedArgs) Kind() string { return "test.ordered" }

func TestStrictPartitionsRunInChainOrderOneAtATime(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var mu sync.Mutex
		order := map[string][]int{}
		running := map[string]int{}
		var overlap atomic.Bool
		w := handling(func(ctx context.Context, j *worker.Job[orderedArgs]) error {
			mu.Lock()
			running[j.PartitionKey]++
			if running[j.PartitionKey] > 1 {
				overlap.Store(true)
			}
			order[j.PartitionKey] = append(order[j.PartitionKey], j.Args.Seq)
			mu.Unlock()
			mu.Lock()
			running[j.PartitionKey]--
			mu.Unlock()
			return nil
		})
		q, rec, cfg := e.nodeA(t, w)
		cfg.Queues = map[string]worker.QueueConfig{worker.DefaultQueue: {StrictPartitions: true, MaxWorkers: 4}}
		c := newClient(t, q, cfg)
		var params []worker.InsertManyParams
		for seq := range 8 {
			for _, p := range []string{"p1", "p2"} {
				params = append(params, worker.InsertManyParams{TenantID: "acme", Args: orderedArgs{Seq: seq}, Opts: &worker.InsertOpts{PartitionKey: p}})
			}
		}
		res, err := c.InsertMany(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			rec.await(t, "every job", is(worker.EventJobSucceeded, r.JobID))
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range []string{"p1", "p2"} {
			if fmt.Sprint(order[p]) != "[0 1 2 3 4 5 6 7]" {
				t.Errorf("partition %s ran in order %v", p, order[p])
			}
		}
		if overlap.Load() {
			t.Error("two jobs of one partition ran at once")
		}
	})
}

type tickArgs struct {
	At time.Time `json:"at"`
}

func (tickArgs) Kind() string { return "test.tick" }

// noLeadership is a backend without leadership (as a backend may
// declare), so every client runs maintenance.
type noLeadership struct{ driver.Driver }

func (noLeadership) Capabilities() driver.Capabilities { return driver.Capabilities{} }

func (noLeadership) TryLead(context.Context, driver.LeadParams) (bool, error) {
	return false, driver.NotSupported("noLeadership", "leadership")
}

func (noLeadership) Resign(context.Context, string, string) error {
	return driver.NotSupported("noLeadership", "leadership")
}

func TestPeriodicJobsOncePerOccurrenceWithTwoClients(t *testing.T) {
	for _, mode := range []string{"leader", "no-leadership"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, e *env) {
				rec := newRecorder()
				periodic := []worker.PeriodicJob{{
					Name: "tick", Schedule: worker.Every(time.Minute), TenantID: "acme",
					Args: func(at time.Time) (worker.Args, *worker.InsertOpts) { return tickArgs{At: at}, nil },
				}, {
					Name: "cron-tick", Schedule: worker.MustCron("*/2 * * * *"), TenantID: "acme",
					Args: func(at time.Time) (worker.Args, *worker.InsertOpts) {
						return tickArgs{At: at}, &worker.InsertOpts{PartitionKey: "cron"}
					},
				}}
				clients := []string{"a", "b"}
				for _, name := range clients {
					w := handling(succeed[tickArgs])
					b := e.backend
					if mode == "no-leadership" {
						b = noLeadership{b}
					}
					cfg := testConfig(w, rec, name, logs(t))
					cfg.PeriodicJobs = periodic
					startClient(t, e.queueOn(b, "node-"+name), cfg)
				}
				const steps = 4
				for step := 0; step <= steps; step++ {
					at := e.now()
					for _, name := range []string{"tick", "cron-tick"} {
						if name == "cron-tick" && step%2 == 1 {
							continue
						}
						enq := rec.await(t, fmt.Sprintf("%s at %v", name, at), func(ev tagged) bool {
							return ev.Type == worker.EventPeriodicEnqueued && ev.Periodic == name && ev.OccurrenceAt.Equal(at)
						})
						rec.await(t, fmt.Sprintf("the run of %s at %v", name, at), is(worker.EventJobSucceeded, enq.JobID))
						if mode == "no-leadership" {
							// Both clients enqueue every occurrence here:
							// only the deterministic job id keeps it one job.
							for _, c := range clients {
								rec.await(t, c+" enqueuing "+name, func(ev tagged) bool {
									return ev.client == c && ev.Type == worker.EventPeriodicEnqueued && ev.Periodic == name && ev.OccurrenceAt.Equal(at)
								})
							}
						}
					}
					if step < steps {
						e.wall.Advance(time.Minute)
					}
				}
				jobs := map[string]map[uuid.UUID]bool{}
				fresh := map[string]int{}
				for _, ev := range rec.all(is(worker.EventPeriodicEnqueued, uuid.UUID{})) {
					occ := ev.Periodic + "@" + ev.OccurrenceAt.UTC().Format(time.RFC3339)
					if jobs[occ] == nil {
						jobs[occ] = map[uuid.UUID]bool{}
					}
					jobs[occ][ev.JobID] = true
					if !ev.Deduplicated {
						fresh[occ]++
					}
				}
				if len(jobs) != steps+1+steps/2+1 {
					t.Errorf("%d occurrences enqueued, want %d: %v", len(jobs), steps+1+steps/2+1, jobs)
				}
				for occ, ids := range jobs {
					if len(ids) != 1 || fresh[occ] != 1 {
						t.Errorf("occurrence %s: %d job ids, written %d times; want 1 and 1", occ, len(ids), fresh[occ])
					}
					for id := range ids {
						if n := len(rec.all(is(worker.EventJobSucceeded, id))); n != 1 {
							t.Errorf("occurrence %s ran %d times", occ, n)
						}
					}
				}
				if n := e.jobCount("test.tick"); n != len(jobs) {
					t.Errorf("%d test.tick jobs in the database, want %d", n, len(jobs))
				}
				if mode == "no-leadership" {
					dups := len(rec.all(func(ev tagged) bool { return ev.Type == worker.EventPeriodicEnqueued && ev.Deduplicated }))
					if dups < len(jobs) {
						t.Errorf("%d deduplicated enqueues, want one per occurrence (%d)", dups, len(jobs))
					}
				}
			})
		})
	}
}

func TestWakeups(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(succeed[quickArgs])
		q, rec, cfg := e.nodeA(t, w)
		cfg.PollInterval = time.Hour // only a wakeup can find the jobs
		c := startClient(t, q, cfg)
		id := insert(t, c, quickArgs{}, nil)
		rec.await(t, "a job enqueued through the same queue", is(worker.EventJobSucceeded, id))

		if e.name != "postgres" {
			return
		}
		// Another process (here: another connection pool) enqueues: only
		// LISTEN/NOTIFY can tell this client.
		other, err := openPostgres(e.url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Close() })
		res, err := worker.Insert(context.Background(), e.queueOn(other, "node-b"), "acme", quickArgs{}, &worker.InsertOpts{IdempotencyKey: "from elsewhere"})
		if err != nil {
			t.Fatal(err)
		}
		rec.await(t, "a job enqueued by another process", is(worker.EventJobSucceeded, res.JobID))
	})
}

func TestInsertAppliesDefaults(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(succeed[typedArgs],
			worker.KindOptions{MaxAttempts: 7})
		q := e.queue("node-a")
		c := newClient(t, q, testConfig(w, newRecorder(), "a", logs(t)))
		ctx := context.Background()
		id := insert(t, c, typedArgs{N: 1}, &worker.InsertOpts{PartitionKey: "p", RunAt: e.now().Add(time.Hour)})
		info := get(t, q, id)
		var payload typedArgs
		if err := json.Unmarshal(info.Payload, &payload); err != nil || payload.N != 1 {
			t.Fatalf("payload %s (%v)", info.Payload, err)
		}
		if info.Kind != "test.typed" || info.MaxAttempts != 7 || info.PartitionKey != "p" || info.Status != queue.StatusScheduled {
			t.Fatalf("kind %s max attempts %d partition %q status %s", info.Kind, info.MaxAttempts, info.PartitionKey, info.Status)
		}
		// The package-level Insert knows nothing of the kind's options.
		res, err := worker.Insert(ctx, q, "acme", typedArgs{N: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info := get(t, q, res.JobID); info.MaxAttempts != 25 {
			t.Fatalf("max attempts %d, want the queue's default", info.MaxAttempts)
		}
		// Same idempotency key and payload: one job; another payload under
		// the key is a conflict (issue 15), not a silent match.
		a, err := c.Insert(ctx, "acme", typedArgs{N: 3}, &worker.InsertOpts{IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Insert(ctx, "acme", typedArgs{N: 3}, &worker.InsertOpts{IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if a.JobID != b.JobID || !b.Deduplicated {
			t.Fatalf("two inserts with one idempotency key: %v and %v (dedup %v)", a.JobID, b.JobID, b.Deduplicated)
		}
		if _, err := c.Insert(ctx, "acme", typedArgs{N: 4}, &worker.InsertOpts{IdempotencyKey: "k"}); !errors.Is(err, queue.ErrIdempotencyConflict) {
			t.Fatalf("the key with another payload: %v, want ErrIdempotencyConflict", err)
		}
	})
}

// With one slot every fetch has Limit 1: fair sharing then rests on each
// round starting with the tenant after the one served last (FairAfter).
func TestFairSharingWithOneSlot(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		last := runFairBacklog(t, e, 200, 5, func(cfg *worker.Config) { cfg.MaxWorkers = 1 })
		t.Logf("one slot: the small tenant's 5 jobs were done within the first %d completions", last)
		if last > 20 {
			t.Fatalf("the small tenant's last job was completion number %d of 205; round-robin would make it about 10", last)
		}
	})
}
