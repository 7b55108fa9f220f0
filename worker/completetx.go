package worker

import (
	"context"
	"errors"
)

// runningJobKey carries a handler's *runningJob in its ctx, for CompleteTx.
type runningJobKey struct{}

// errCompleteTxNotCommitted fails an attempt whose handler completed its
// job with CompleteTx and returned nil, but whose transaction did not
// commit: its writes are gone, so the job must run again.
var errCompleteTxNotCommitted = errors.New("worker: the handler completed the job with CompleteTx, but its transaction did not commit")

// CompleteTx marks job succeeded inside the handler's own transaction tx
// (a pgx.Tx on PostgreSQL, a *sql.Tx on SQLite), fenced by the job's
// lease, so that what the handler writes and the job's completion commit
// together or not at all: exactly-once effects for handlers whose effects
// are writes to the same database.
//
// Call it from the job's handler, with the ctx the handler was given,
// before committing tx. Then return nil: the worker sees whether tx
// committed, and if it did not, fails the attempt (it runs again) rather
// than completing the job without the handler's writes. ErrLeaseLost
// (queue.ErrLeaseLost) means the lease is gone: roll back.
func CompleteTx[T Args](ctx context.Context, tx any, job *Job[T]) error {
	rj, ok := ctx.Value(runningJobKey{}).(*runningJob)
	if !ok || rj.lease.JobID != job.JobID {
		return errors.New("worker: CompleteTx needs the ctx its job's handler was given")
	}
	if err := rj.q.CompleteTx(ctx, tx, job.Lease); err != nil {
		return err
	}
	rj.completedInTx.Store(true)
	return nil
}
