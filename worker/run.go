package worker

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordo-sched/ordo/queue"
)

// finalizeTimeout bounds the write that records a job's outcome. It is
// not the job's context, which may be over: the outcome must still land.
const finalizeTimeout = 30 * time.Second

// runningJob is a job between its fetch and its outcome being recorded.
// Exactly one party records the outcome: the job's own goroutine, or Stop
// when it hands the job back. claim decides which.
type runningJob struct {
	lease    queue.Lease
	queue    string
	claimed  atomic.Bool
	released chan struct{} // closed by Stop after it claimed the job
	// completedInTx: the handler called CompleteTx, so whether the job
	// succeeded is up to its transaction's commit (see writeOutcome).
	completedInTx atomic.Bool
	q             *queue.Queue
}

func (rj *runningJob) claim() bool { return rj.claimed.CompareAndSwap(false, true) }

func (c *Client) start(qs *queueState, l queue.Lease) {
	rj := &runningJob{lease: l, queue: qs.name, released: make(chan struct{}), q: c.q}
	c.runMu.Lock()
	c.jobs[l.JobID] = rj
	c.runMu.Unlock()
	c.jobWG.Add(1)
	go func() {
		defer c.jobWG.Done()
		freed := false
		freeSlot := func() {
			if !freed {
				freed = true
				c.release(qs, 1)
			}
		}
		defer freeSlot()
		defer func() {
			c.runMu.Lock()
			delete(c.jobs, l.JobID)
			c.runMu.Unlock()
		}()
		c.run(qs, rj, freeSlot)
	}()
}

// timeoutFor picks a job's timeout: the args' Timeout method, else the
// kind's, else the client's default. Negative means none.
func (c *Client) timeoutFor(e *kindEntry, p prepared) time.Duration {
	switch {
	case p.hasTimeout && p.timeout != 0:
		return p.timeout
	case e.opts.Timeout != 0:
		return e.opts.Timeout
	}
	return c.cfg.DefaultTimeout
}

// run runs a job's handler and records its outcome. It calls freeSlot as
// soon as the handler is done, before the outcome is written: the write
// joins a batch with other jobs' outcomes (see driver.Driver),
// and the slot can take the next job meanwhile, as in River; at most
// MaxWorkers outcomes wait like this (Client.recording). Stop still waits
// for the write.
func (c *Client) run(qs *queueState, rj *runningJob, freeSlot func()) {
	l := rj.lease
	log := jobLogger{log: c.log, lease: &rj.lease, queue: qs.name}
	c.emit(Event{Type: EventJobStarted, Queue: qs.name, Lease: l})
	log.Debug("worker: job started")
	began := time.Now()

	var err error
	var hb *heartbeat
	e := c.kinds[l.Kind]
	if e == nil {
		err = &unknownKindError{kind: l.Kind}
	} else if p, derr := e.prepare(&l); derr != nil {
		err = derr
	} else {
		ctx, cancel := context.WithCancelCause(context.WithValue(c.jobsCtx, runningJobKey{}, rj))
		hb = c.startHeartbeat(qs, l, cancel)
		err = supervise(ctx, wrapWork(c.cfg.WorkMiddleware, &rj.lease, p.work), c.timeoutFor(e, p), c.cfg.TimeoutGrace, hb.lost, rj.released, log)
		cancel(context.Canceled)
		hb.stop()
	}
	took := time.Since(began)
	c.recording <- struct{}{}
	defer func() { <-c.recording }()
	freeSlot()
	if !rj.claim() {
		return // Stop handed the job back; the handler's result is moot
	}
	// A job its handler completed with CompleteTx is not running any more
	// once that commits, so the heartbeat's next extension finds the lease
	// gone: writeOutcome, not the heartbeat, says how the job ended.
	if hb != nil && hb.wasLost() && !rj.completedInTx.Load() {
		c.emit(Event{Type: EventLeaseLost, Queue: qs.name, Lease: hb.current(), Err: queue.ErrLeaseLost, Duration: took})
		log.Warn("worker: the job's lease was lost while it ran; its result is discarded", "handler_error", err)
		return
	}
	c.finish(qs.name, e, l, err, took, rj.completedInTx.Load(), log)
}

// finish records a job's outcome in the queue and reports it.
func (c *Client) finish(queueName string, e *kindEntry, l queue.Lease, err error, took time.Duration, inTx bool, log interface {
	Warn(string, ...any)
	Error(string, ...any)
	Debug(string, ...any)
}) {
	res := classify(err)
	ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
	defer cancel()
	ev := Event{Queue: queueName, Lease: l, Err: res.Err, Duration: took}
	var terr error
	// A write that failed for a reason other than the job's own state is
	// tried again, with backoff, until finalizeTimeout: a database restart
	// of a few seconds must not leave the job to run again once its lease
	// expires. The write is fenced by the lease token, so a retry after a
	// rescue gave the job away is refused (ErrLeaseLost), never applied
	// twice. The recording semaphore (at most MaxWorkers outcomes in
	// flight) bounds what waits in memory; fetching slows meanwhile.
	for delay, retried := outcomeRetryFirst, false; ; delay = min(2*delay, outcomeRetryMax) {
		ev, terr = c.writeOutcome(ctx, e, l, res, ev, inTx)
		if !retryableOutcome(terr) || ctx.Err() != nil {
			break
		}
		if !retried {
			retried = true
			c.emit(Event{Type: EventOutcomeRetrying, Queue: queueName, Lease: l, Err: terr, Duration: took})
			log.Warn("worker: recording the job's outcome failed; retrying until it lands or "+finalizeTimeout.String()+" pass",
				"outcome", res.Outcome.String(), "error", terr)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	switch {
	case errors.Is(terr, queue.ErrLeaseLost):
		c.emit(Event{Type: EventLeaseLost, Queue: queueName, Lease: l, Err: terr, Duration: took})
		log.Warn("worker: the job's lease was lost before its outcome was recorded; the outcome is discarded", "outcome", res.Outcome.String(), "handler_error", res.Err)
		return
	case terr != nil:
		log.Error("worker: recording the job's outcome failed, retries included; it will run again once its lease expires", "outcome", res.Outcome.String(), "error", terr)
		return
	}
	c.emit(ev)
	switch ev.Type {
	case EventJobFailed:
		log.Warn("worker: job attempt failed", "error", res.Err, "retried", ev.Retried, "retry_at", ev.RetryAt)
	default:
		log.Debug("worker: job finished", "outcome", res.Outcome.String(), "took", took)
	}
}

// writeOutcome records res for the job once, and returns ev completed with
// what the write decided (its type, and for a failure whether it is
// retried and when).
func (c *Client) writeOutcome(ctx context.Context, e *kindEntry, l queue.Lease, res Result, ev Event, inTx bool) (Event, error) {
	var terr error
	if res.Outcome == OutcomeSucceeded && inTx {
		// The handler completed the job in its own transaction: the job
		// succeeded if that committed. If it did not, the handler's
		// writes are gone too, and completing the job here would lose
		// them: the attempt fails instead, to run again.
		info, err := c.q.Get(ctx, l.JobID)
		switch {
		case err != nil:
			return ev, err
		case info.Status == queue.StatusSucceeded && info.LeaseToken == l.Token:
			ev.Type = EventJobSucceeded
			return ev, nil
		case info.Status == queue.StatusRunning && info.LeaseToken == l.Token:
			res = Result{Outcome: OutcomeFailed, Err: errCompleteTxNotCommitted}
			ev.Err = res.Err
		default:
			return ev, queue.ErrLeaseLost
		}
	}
	switch res.Outcome {
	case OutcomeSucceeded:
		terr = c.q.Complete(ctx, l)
		ev.Type = EventJobSucceeded
	case OutcomeCancelled:
		reason := "cancelled by its handler"
		var ce *cancelError
		if errors.As(res.Err, &ce) && ce.err != nil {
			reason = ce.err.Error()
		}
		terr = c.q.CancelLeased(ctx, l, reason)
		ev.Type = EventJobCancelled
	case OutcomeSnoozed:
		terr = c.q.Snooze(ctx, l, res.SnoozeFor)
		ev.Type, ev.RetryAt = EventJobSnoozed, c.now().Add(res.SnoozeFor)
	default:
		fo := queue.FailOptions{NoRetry: res.Outcome == OutcomeDiscarded}
		if !fo.NoRetry && e != nil && e.opts.Backoff != nil {
			fo.Delay = e.opts.Backoff(l.Attempt)
		}
		var fr queue.FailResult
		fr, terr = c.q.Fail(ctx, l, res.Err, fo)
		ev.Type, ev.Retried, ev.RetryAt = EventJobFailed, fr.Retried, fr.RunAt
		var te *TimeoutError
		ev.Abandoned = errors.As(res.Err, &te) && te.Abandoned
	}
	return ev, terr
}

// retryableOutcome reports whether an outcome write that failed with err
// may succeed if tried again: not when it succeeded, not when the job's
// own state refused it (the lease is gone, the job is gone or finished, the
// write is invalid), and not when this process closed its queue.
func retryableOutcome(err error) bool {
	switch {
	case err == nil, errors.Is(err, queue.ErrLeaseLost), errors.Is(err, queue.ErrJobNotFound),
		errors.Is(err, queue.ErrJobFinished), errors.Is(err, queue.ErrInvalidJob), errors.Is(err, queue.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// jobLogger logs with a job's attributes, added only when a record is
// written: slog's With would format them for every job, logged or not.
type jobLogger struct {
	log   *slog.Logger
	lease *queue.Lease
	queue string
}

func (j jobLogger) logAt(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	if !j.log.Enabled(ctx, level) {
		return
	}
	l := j.lease
	attrs := []any{"job_id", l.JobID, "kind", l.Kind, "tenant_id", l.TenantID, "attempt", l.Attempt, "queue", j.queue}
	if l.THLC != "" {
		attrs = append(attrs, "t_hlc", l.THLC) // its place in the chain, and the node that enqueued it
	}
	attrs = append(attrs, args...)
	j.log.Log(ctx, level, msg, attrs...)
}

func (j jobLogger) Debug(msg string, args ...any) { j.logAt(slog.LevelDebug, msg, args) }
func (j jobLogger) Warn(msg string, args ...any)  { j.logAt(slog.LevelWarn, msg, args) }
func (j jobLogger) Error(msg string, args ...any) { j.logAt(slog.LevelError, msg, args) }

// errReleased and errLostAbandoned end supervise without an outcome.
var (
	errReleased      = errors.New("worker: job handed back by Stop")
	errLostAbandoned = errors.New("worker: lease lost and the handler did not return within the grace period")
)

// supervise runs work in its own goroutine and waits for it, for at most
// timeout plus grace (timeout <= 0: no limit), or until released closes,
// or until grace after lost closes. A handler still running then is
// abandoned: Go cannot stop a goroutine, and waiting for one that ignores
// its context would hold a slot, and the job, forever.
func supervise(ctx context.Context, work func(context.Context) error, timeout, grace time.Duration,
	lost, released <-chan struct{}, log interface{ Warn(string, ...any) }) error {
	var timeoutCause error
	if timeout > 0 {
		te := &TimeoutError{Timeout: timeout}
		timeoutCause = te
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, te)
		defer cancel()
	}
	done := make(chan error, 1)
	var abandoned atomic.Bool
	began := time.Now()
	go func() {
		err := callHandler(ctx, work)
		if abandoned.Load() && log != nil {
			log.Warn("worker: an abandoned handler returned at last", "after", time.Since(began), "error", err)
		}
		done <- err
	}()
	var limit <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout + grace)
		defer t.Stop()
		limit = t.C
	}
	var lostGrace <-chan time.Time
	for {
		select {
		case err := <-done:
			if err != nil && timeoutCause != nil && context.Cause(ctx) == timeoutCause {
				return &TimeoutError{Timeout: timeout, Err: err}
			}
			return err
		case <-limit:
			abandoned.Store(true)
			return &TimeoutError{Timeout: timeout, Abandoned: true}
		case <-released:
			abandoned.Store(true)
			return errReleased
		case <-lost:
			lost = nil
			t := time.NewTimer(grace)
			defer t.Stop()
			lostGrace = t.C
		case <-lostGrace:
			abandoned.Store(true)
			return errLostAbandoned
		}
	}
}

// callHandler runs work, turning a panic into the attempt's error.
func callHandler(ctx context.Context, work func(context.Context) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return work(ctx)
}

// heartbeat extends a running job's lease every HeartbeatInterval. When
// the lease turns out to be lost it cancels the job's context: the work
// now belongs to someone else. It is a timer, not a goroutine: most jobs
// finish before the first beat, and then cost nothing but the timer.
type heartbeat struct {
	c         *Client
	qs        *queueState
	cancelJob context.CancelCauseFunc
	lost      chan struct{}
	isLost    atomic.Bool

	mu       sync.Mutex
	lease    queue.Lease
	timer    *time.Timer
	stopped  bool
	cancel   context.CancelFunc // of the Extend in flight, if any
	inflight sync.WaitGroup
}

func (c *Client) startHeartbeat(qs *queueState, l queue.Lease, cancelJob context.CancelCauseFunc) *heartbeat {
	h := &heartbeat{c: c, qs: qs, cancelJob: cancelJob, lost: make(chan struct{}), lease: l}
	h.mu.Lock()
	h.timer = time.AfterFunc(c.cfg.HeartbeatInterval, h.beat)
	h.mu.Unlock()
	return h
}

// beat extends the lease once and sets the timer for the next.
func (h *heartbeat) beat() {
	c := h.c
	select {
	case <-c.crashed:
		return
	default:
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaseFor)
	h.cancel = cancel
	h.inflight.Add(1)
	l := h.lease
	h.mu.Unlock()
	defer h.inflight.Done()
	defer cancel()
	go func() {
		select {
		case <-c.crashed:
			cancel()
		case <-ctx.Done():
		}
	}()

	nl, err := c.q.Extend(ctx, l, c.cfg.LeaseFor)
	switch {
	case errors.Is(err, queue.ErrLeaseLost):
		h.isLost.Store(true)
		close(h.lost)
		h.cancelJob(errLeaseLostCause)
		return
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn("worker: extending a job's lease failed; trying again at the next heartbeat", "job_id", l.JobID, "error", err)
		}
	default:
		h.mu.Lock()
		h.lease = nl
		h.mu.Unlock()
		c.emit(Event{Type: EventLeaseExtended, Queue: h.qs.name, Lease: nl})
	}
	h.mu.Lock()
	if !h.stopped {
		h.timer.Reset(c.cfg.HeartbeatInterval)
	}
	h.mu.Unlock()
}

func (h *heartbeat) current() queue.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease
}

func (h *heartbeat) wasLost() bool { return h.isLost.Load() }

// stop ends the beats, cancelling one in flight, and waits for it.
func (h *heartbeat) stop() {
	h.mu.Lock()
	h.stopped = true
	h.timer.Stop()
	if h.cancel != nil {
		h.cancel()
	}
	h.mu.Unlock()
	h.inflight.Wait()
}
