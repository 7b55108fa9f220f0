package worker

import (
	"errors"
	"fmt"
	"time"
)

// JobCancel, returned (possibly wrapped) from a handler, cancels the job
// for good: no retry, status cancelled, err's text recorded as the reason.
// err may be nil.
func JobCancel(err error) error { return &cancelError{err: err} }

// JobSnooze, returned from a handler, puts the job back to run again after
// d without counting the attempt: for "not yet" rather than "failed".
// A negative d is taken as 0.
func JobSnooze(d time.Duration) error { return &snoozeError{d: max(d, 0)} }

// NoRetry, returned (possibly wrapped) from a handler, fails the job for
// good even with attempts left: for errors retrying cannot fix.
func NoRetry(err error) error { return &noRetryError{err: err} }

type cancelError struct{ err error }

func (e *cancelError) Error() string {
	if e.err == nil {
		return "job cancelled by its handler"
	}
	return "job cancelled by its handler: " + e.err.Error()
}
func (e *cancelError) Unwrap() error { return e.err }

type snoozeError struct{ d time.Duration }

// IsSnooze reports whether err (from a handler, possibly wrapped) is a
// JobSnooze, and for how long: middleware that records outcomes (the
// tracing package's) tells "not yet" from a failure with it.
func IsSnooze(err error) (time.Duration, bool) {
	var s *snoozeError
	if errors.As(err, &s) {
		return s.d, true
	}
	return 0, false
}

func (e *snoozeError) Error() string { return fmt.Sprintf("job snoozed for %v", e.d) }

type noRetryError struct{ err error }

func (e *noRetryError) Error() string {
	if e.err == nil {
		return "failed without retry"
	}
	return e.err.Error()
}
func (e *noRetryError) Unwrap() error { return e.err }

// ErrUnknownKind is matched by the error recorded for a job whose kind no
// worker of the client is registered for.
var ErrUnknownKind = errors.New("worker: no worker registered for the job's kind")

type unknownKindError struct{ kind string }

func (e *unknownKindError) Error() string {
	return fmt.Sprintf("worker: no worker is registered for kind %q in the client that leased it; failed without retry", e.kind)
}
func (e *unknownKindError) Is(target error) bool { return target == ErrUnknownKind }

// DecodeError is recorded, and the job failed without retry, when a
// payload does not unmarshal into the handler's args type: retrying the
// same bytes cannot succeed.
type DecodeError struct {
	Kind string
	Type string // the Go type the payload was decoded into
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("worker: payload of job kind %q does not decode into %s: %v", e.Kind, e.Type, e.Err)
}
func (e *DecodeError) Unwrap() error { return e.Err }

// PanicError is the error of an attempt whose handler panicked.
type PanicError struct {
	Value any
	Stack []byte
}

// maxStack caps the stack recorded in last_error; the top frames are the
// useful ones.
const maxStack = 8 << 10

func (e *PanicError) Error() string {
	st := e.Stack
	if len(st) > maxStack {
		st = append(st[:maxStack:maxStack], "\n... (truncated)"...)
	}
	return fmt.Sprintf("panic: %v\n\n%s", e.Value, st)
}

// TimeoutError is the error of an attempt that ran past its timeout.
// Abandoned means the handler had not returned TimeoutGrace after its
// context ended; its goroutine was left to finish on its own.
type TimeoutError struct {
	Timeout   time.Duration
	Abandoned bool
	Err       error // what the handler returned, if it returned
}

func (e *TimeoutError) Error() string {
	switch {
	case e.Abandoned:
		return fmt.Sprintf("timed out after %v; the handler ignored its context and was abandoned", e.Timeout)
	case e.Err != nil:
		return fmt.Sprintf("timed out after %v: %v", e.Timeout, e.Err)
	}
	return fmt.Sprintf("timed out after %v", e.Timeout)
}
func (e *TimeoutError) Unwrap() error { return e.Err }

// Outcome classifies what a handler's return does to its job.
type Outcome int

const (
	// OutcomeSucceeded: the job completes.
	OutcomeSucceeded Outcome = iota
	// OutcomeFailed: the attempt failed; the job is retried after a backoff
	// while attempts remain, and fails for good after the last.
	OutcomeFailed
	// OutcomeDiscarded: failed without retry (NoRetry, an unknown kind, a
	// payload that does not decode).
	OutcomeDiscarded
	// OutcomeCancelled: JobCancel.
	OutcomeCancelled
	// OutcomeSnoozed: JobSnooze; runs again later, attempt not counted.
	OutcomeSnoozed
)

func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeFailed:
		return "failed"
	case OutcomeDiscarded:
		return "discarded"
	case OutcomeCancelled:
		return "cancelled"
	case OutcomeSnoozed:
		return "snoozed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what one run of a handler came to.
type Result struct {
	Outcome Outcome
	// Err is the attempt's error as recorded: what the handler returned,
	// or a *PanicError, *TimeoutError, *DecodeError. Nil on success.
	Err error
	// SnoozeFor is JobSnooze's delay, for OutcomeSnoozed.
	SnoozeFor time.Duration
}

// classify maps a handler's return to its Result.
func classify(err error) Result {
	if err == nil {
		return Result{Outcome: OutcomeSucceeded}
	}
	var (
		cancel  *cancelError
		snooze  *snoozeError
		noRetry *noRetryError
		decode  *DecodeError
	)
	switch {
	case errors.As(err, &snooze):
		return Result{Outcome: OutcomeSnoozed, Err: err, SnoozeFor: snooze.d}
	case errors.As(err, &cancel):
		return Result{Outcome: OutcomeCancelled, Err: err}
	case errors.As(err, &noRetry), errors.As(err, &decode), errors.Is(err, ErrUnknownKind):
		return Result{Outcome: OutcomeDiscarded, Err: err}
	}
	return Result{Outcome: OutcomeFailed, Err: err}
}
