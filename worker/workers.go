package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/queue"
)

// Args is a job's payload type. Kind names the job kind; it must return a
// constant, because it is called on the zero value to learn a worker's
// kind, and on every inserted value to name the job.
//
// Args is marshalled with encoding/json on insert and unmarshalled into a
// fresh value before each run, so only exported fields travel.
//
// Args may also implement
//
//	Timeout() time.Duration   // per-job timeout, overriding KindOptions.Timeout (<0: none)
//	InsertOpts() InsertOpts   // defaults for every insert of this type
type Args interface {
	Kind() string
}

// Job is what a typed handler receives: the lease (id, tenant, attempt,
// ...) and the decoded arguments.
type Job[T Args] struct {
	queue.Lease
	Args T
}

// Worker works jobs of one kind. Work's return value decides what happens
// to the job: nil completes it; JobCancel, JobSnooze and NoRetry do what
// their names say; any other error fails the attempt, which is retried
// after a backoff while attempts remain. ctx ends at the job's timeout,
// when the client stops, or when the job's lease is lost; a handler that
// ignores it is abandoned (see the package documentation).
type Worker[T Args] interface {
	Work(ctx context.Context, job *Job[T]) error
}

// WorkFunc adapts a function to Worker.
type WorkFunc[T Args] func(ctx context.Context, job *Job[T]) error

// Work implements Worker.
func (f WorkFunc[T]) Work(ctx context.Context, job *Job[T]) error { return f(ctx, job) }

// KindOptions configure one kind. The zero value means the client's
// defaults.
type KindOptions struct {
	// Queue is the client queue (a named group of kinds with its own
	// concurrency) that runs this kind; default "default".
	Queue string
	// Timeout bounds one attempt; 0 means Config.DefaultTimeout and a
	// negative value no timeout. An args type's Timeout method overrides it
	// per job.
	Timeout time.Duration
	// MaxAttempts is the default max attempts for jobs of this kind
	// inserted through Client.Insert (0: the queue's default, 25).
	MaxAttempts int
	// Backoff gives the delay before the retry that follows failed attempt
	// number attempt (1-based), instead of the queue's exponential backoff
	// with jitter. A result <= 0 falls back to the queue's backoff.
	Backoff func(attempt int) time.Duration
}

// Workers is the set of handlers a client runs, by kind. Register
// everything before passing it to NewClient; later registrations are not
// seen by clients already created.
type Workers struct {
	mu    sync.Mutex
	kinds map[string]*kindEntry
}

// NewWorkers returns an empty set.
func NewWorkers() *Workers { return &Workers{kinds: map[string]*kindEntry{}} }

// kindEntry is one registered kind, with its payload decoder closed over
// the handler's type.
type kindEntry struct {
	kind     string
	typeName string // for error messages: what the payload failed to decode into
	opts     KindOptions
	prepare  func(l *queue.Lease) (prepared, error)
}

// prepared is a decoded job, ready to run.
type prepared struct {
	timeout    time.Duration // from the args' Timeout method; 0 when it has none
	hasTimeout bool
	work       func(ctx context.Context) error
}

// AddWorker registers w for T's kind. It panics if the kind is invalid or
// already registered, or if more than one KindOptions is given: those are
// programming errors found at start-up. AddWorkerSafely returns them.
func AddWorker[T Args](r *Workers, w Worker[T], opts ...KindOptions) {
	if err := AddWorkerSafely(r, w, opts...); err != nil {
		panic(err)
	}
}

// AddWorkerSafely is AddWorker returning its errors.
func AddWorkerSafely[T Args](r *Workers, w Worker[T], opts ...KindOptions) error {
	if w == nil {
		return errors.New("worker: AddWorker with a nil worker")
	}
	typeName := reflect.TypeFor[T]().String()
	kind, err := kindOf[T]()
	if err != nil {
		return err
	}
	e := &kindEntry{kind: kind, typeName: typeName}
	e.prepare = func(l *queue.Lease) (prepared, error) {
		var args T
		if err := json.Unmarshal(l.Payload, &args); err != nil {
			return prepared{}, &DecodeError{Kind: l.Kind, Type: typeName, Err: err}
		}
		job := &Job[T]{Lease: *l, Args: args}
		p := prepared{work: func(ctx context.Context) error { return w.Work(ctx, job) }}
		p.timeout, p.hasTimeout = argsTimeout(args)
		return p, nil
	}
	return r.add(e, opts)
}

// AddFunc registers a plain function for kind: it gets the lease and
// decodes the payload itself. Panics like AddWorker.
func AddFunc(r *Workers, kind string, fn func(ctx context.Context, l *queue.Lease) error, opts ...KindOptions) {
	if err := AddFuncSafely(r, kind, fn, opts...); err != nil {
		panic(err)
	}
}

// AddFuncSafely is AddFunc returning its errors.
func AddFuncSafely(r *Workers, kind string, fn func(ctx context.Context, l *queue.Lease) error, opts ...KindOptions) error {
	if fn == nil {
		return errors.New("worker: AddFunc with a nil function")
	}
	if err := chain.ValidateKind(kind); err != nil {
		return fmt.Errorf("worker: AddFunc: %w", err)
	}
	e := &kindEntry{kind: kind, typeName: "func"}
	e.prepare = func(l *queue.Lease) (prepared, error) {
		lease := *l
		return prepared{work: func(ctx context.Context) error { return fn(ctx, &lease) }}, nil
	}
	return r.add(e, opts)
}

func (r *Workers) add(e *kindEntry, opts []KindOptions) error {
	if r == nil {
		return errors.New("worker: nil *Workers (use NewWorkers)")
	}
	switch len(opts) {
	case 0:
	case 1:
		e.opts = opts[0]
	default:
		return fmt.Errorf("worker: kind %q: at most one KindOptions, got %d", e.kind, len(opts))
	}
	if e.opts.Queue == "" {
		e.opts.Queue = DefaultQueue
	}
	if e.opts.MaxAttempts < 0 || e.opts.MaxAttempts > 1000 {
		return fmt.Errorf("worker: kind %q: MaxAttempts = %d, want 0 (default) to 1000", e.kind, e.opts.MaxAttempts)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = map[string]*kindEntry{}
	}
	if old, dup := r.kinds[e.kind]; dup {
		return fmt.Errorf("worker: kind %q is already registered (for %s)", e.kind, old.typeName)
	}
	r.kinds[e.kind] = e
	return nil
}

// Kinds lists the registered kinds, sorted.
func (r *Workers) Kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *Workers) snapshot() map[string]*kindEntry {
	out := map[string]*kindEntry{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.kinds {
		out[k] = e
	}
	return out
}

// kindOf calls Kind on T's zero value, which is the only value there is
// when a worker is registered.
func kindOf[T Args]() (kind string, err error) {
	typeName := reflect.TypeFor[T]().String()
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("worker: calling Kind on the zero value of %s panicked (%v): declare Kind on a value receiver and return a constant", typeName, v)
		}
	}()
	var zero T
	kind = zero.Kind()
	if err := chain.ValidateKind(kind); err != nil {
		return "", fmt.Errorf("worker: %s.Kind(): %w", typeName, err)
	}
	return kind, nil
}

// argsTimeout reads an args value's optional Timeout method; a method that
// panics (on a nil pointer, say) counts as absent.
func argsTimeout(args any) (d time.Duration, ok bool) {
	t, isT := args.(interface{ Timeout() time.Duration })
	if !isT {
		return 0, false
	}
	defer func() {
		if recover() != nil {
			d, ok = 0, false
		}
	}()
	return t.Timeout(), true
}
