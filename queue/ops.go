package queue

import (
	"context"

	"github.com/google/uuid"
)

// Retry puts a failed or cancelled job back in the queue (see
// driver.Operations.RetryJob) at the queue's current time.
func (q *Queue) Retry(ctx context.Context, jobID uuid.UUID) error {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	if err := q.backend.RetryJob(ctx, jobID, q.now()); err != nil {
		return err
	}
	q.notify()
	return nil
}
