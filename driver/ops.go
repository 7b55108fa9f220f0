package driver

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
)

// ErrNotRetryable is returned by RetryJob for a job that is not failed or
// cancelled.
var ErrNotRetryable = errors.New("queue: only a failed or cancelled job can be retried")

// ErrJobNotFinished is returned by DeleteJob for a job that has not
// finished (or is withheld as a chain violation).
var ErrJobNotFinished = errors.New("queue: only a succeeded, failed or cancelled job can be deleted")

// Deletable reports whether a job in status s may be deleted.
func (s Status) Deletable() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled
}

// Retryable reports whether a job in status s may be retried.
func (s Status) Retryable() bool { return s == StatusFailed || s == StatusCancelled }

// QueueKey names a queue: a tenant's jobs, optionally narrowed to one kind
// (Kind "" is every kind of the tenant). Pausing a tenant's whole queue
// and pausing one of its kinds are separate pauses.
type QueueKey struct {
	TenantID string
	Kind     string
}

// Validate checks the tenant id and, when set, the kind.
func (k QueueKey) Validate() error {
	if err := chain.ValidateTenantID(k.TenantID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if k.Kind != "" {
		if err := chain.ValidateKind(k.Kind); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidJob, err)
		}
	}
	return nil
}

// String is "tenant" or "tenant/kind".
func (k QueueKey) String() string {
	if k.Kind == "" {
		return k.TenantID
	}
	return k.TenantID + "/" + k.Kind
}

// PausedQueue is a paused queue, who paused it and when.
type PausedQueue struct {
	QueueKey
	PausedAt time.Time
	PausedBy string
}

// TenantActivity is one tenant's recent work.
type TenantActivity struct {
	TenantID  string
	Enqueued  int64 // jobs enqueued at or after the window's start
	Completed int64 // jobs that succeeded at or after the window's start
	// OldestPending is the earliest job in status pending (due and not
	// leased): in HLC order on the HLC side, else by created_at. Zero
	// JobID when there is none.
	OldestPending   uuid.UUID
	OldestPendingAt time.Time // when it was enqueued
	// FirstEnqueuedAt is the tenant's earliest enqueue on record (its
	// first log entry, or its oldest legacy row); zero when it has none.
	// A rate over a window that began before it covers only the time
	// since.
	FirstEnqueuedAt time.Time
}

// VerificationRecord is the outcome of one verification of a tenant's
// chains.
type VerificationRecord struct {
	TenantID       string
	VerifiedAt     time.Time
	Valid          bool
	EntriesChecked int64
	IssueCount     int64
	// Issues holds the first issues found, as audit.Issue JSON (a JSON
	// array), so this package need not import audit.
	Issues []byte
	Source string // who ran it: "api", "dashboard:<token name>", ...
}

// NodeReport is what a node reports about its clock.
type NodeReport struct {
	NodeID        string
	StartedAt     time.Time
	Now           time.Time // the node's wall clock when it reported
	LastHLC       string    // the node's HLC then (canonical text)
	Mode          string
	ClockRefusals int64 // enqueues refused for drift since the node started
}

// NodeStatus is a node as the dashboard shows it: its last report, if
// any, and its persisted HLC upper bound, if any.
type NodeStatus struct {
	NodeReport
	Reported      bool  // the node has reported (it runs ordo serve)
	UpperBoundMS  int64 // scheduler.hlc_state.upper_bound_ms; 0 if none
	HasUpperBound bool
}

// OperatorAction is one action an operator took.
type OperatorAction struct {
	ID       int64
	TenantID string
	JobID    uuid.UUID // uuid.Nil for queue actions
	Kind     string    // the kind of a paused or resumed queue
	Action   string    // "retry", "cancel", "delete", "pause", "resume"
	Actor    string
	Detail   string
	At       time.Time
}

// ActionFilter selects recorded actions.
type ActionFilter struct {
	TenantID string    // required
	JobID    uuid.UUID // uuid.Nil for all of the tenant's actions
	Limit    int       // default 50, at most 1000
}

// EffectiveLimit returns the filter's limit within 1..1000.
func (f ActionFilter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return 50
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}

// THLCLowerBound is the smallest canonical t_hlc text at or after the
// Unix millisecond ms: t_hlc texts sort as bytes in time order, so
// "t_hlc >= THLCLowerBound(ms)" selects the entries stamped at or after
// ms with an index on t_hlc.
func THLCLowerBound(ms int64) string {
	if ms < 0 {
		ms = 0
	}
	s := strconv.FormatInt(ms, 10)
	for len(s) < 13 {
		s = "0" + s
	}
	return s
}

// ErrInvalidJob is wrapped by every error that refuses a job.
var ErrInvalidJob = errors.New("queue: invalid job")
