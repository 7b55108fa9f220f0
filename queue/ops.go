package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
)

// Retry puts a failed or cancelled job back in the queue (see
// driver.Operations.RetryJob) at the queue's current time.
func (q *Queue) Retry(ctx context.Context, jobID uuid.UUID) error {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	if err := q.backend.RetryJob(ctx, jobID, q.now()); err != nil {
		return q.prunedAs(ctx, driver.JobRef{JobID: jobID}, err, ErrNotRetryable)
	}
	q.notify()
	return nil
}

// DeleteJob deletes a finished job's state on both sides (see
// driver.Operations.DeleteJob); its log entry stays, so the job reads as
// pruned afterwards.
func (q *Queue) DeleteJob(ctx context.Context, jobID uuid.UUID) error {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	return q.backend.DeleteJob(ctx, jobID)
}

// prunedAs answers an action on a job whose state retention pruned: the
// backend finds no state and says ErrJobNotFound, but the job exists (its
// log entry says so) and finished, which is what the caller must hear (as,
// e.g. ErrJobFinished for a cancel). Any other error is returned as is.
func (q *Queue) prunedAs(ctx context.Context, ref driver.JobRef, err, as error) error {
	if !errors.Is(err, ErrJobNotFound) {
		return err
	}
	if info, gerr := q.backend.GetJob(ctx, ref); gerr == nil && info.Pruned {
		return fmt.Errorf("%w: it finished and retention pruned its state", as)
	}
	return err
}
