package queue

import "github.com/ordo-sched/ordo/driver"

// The records an application sees through a Queue are the driver's own,
// named here so that applications need not import the backend contract.
type (
	// Status is a job's lifecycle state.
	Status = driver.Status
	// Lease is a job handed to a worker.
	Lease = driver.Lease
	// JobInfo is a job as stored, merged from both sides.
	JobInfo = driver.JobInfo
	// ChainEntry is a job's log entry as stored, with its predecessor's
	// link.
	ChainEntry = driver.ChainEntry
	// EnqueueResult reports what became of one job.
	EnqueueResult = driver.EnqueueResult
)

// A job's lifecycle states (see driver.Status).
const (
	StatusPending        = driver.StatusPending
	StatusScheduled      = driver.StatusScheduled
	StatusRunning        = driver.StatusRunning
	StatusSucceeded      = driver.StatusSucceeded
	StatusFailed         = driver.StatusFailed
	StatusCancelled      = driver.StatusCancelled
	StatusChainViolation = driver.StatusChainViolation
	StatusPruned         = driver.StatusPruned
)

// Errors of the queue's calls that come from its backend.
var (
	ErrLeaseLost    = driver.ErrLeaseLost
	ErrJobNotFound  = driver.ErrJobNotFound
	ErrJobFinished  = driver.ErrJobFinished
	ErrClosed       = driver.ErrClosed
	ErrNotRetryable = driver.ErrNotRetryable
	// ErrJobNotFinished: DeleteJob of a job that has not finished.
	ErrJobNotFinished = driver.ErrJobNotFinished
	ErrInvalidJob     = driver.ErrInvalidJob
	// ErrIdempotencyConflict: Job.IdempotencyKey names an existing job
	// with another payload (unless Job.KeyDerived); nothing was written.
	ErrIdempotencyConflict = driver.ErrIdempotencyConflict
)
