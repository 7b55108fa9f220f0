package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// Defaults of Retention: River's, so that a River user's expectations
// hold.
const (
	DefaultRetainSucceeded = 24 * time.Hour
	DefaultRetainCancelled = 24 * time.Hour
	DefaultRetainFailed    = 7 * 24 * time.Hour

	// pruneBatch bounds the rows one prune statement deletes on each
	// side (one short transaction), and prunePerCall the statements of
	// one Prune, so that a large first backlog is worked off over several
	// maintenance rounds instead of holding up rescues and periodic jobs.
	pruneBatch   = 1000
	prunePerCall = 50
)

// Retention is how long finished jobs keep their state (status,
// attempts, last error) before Prune deletes it, per final status. Zero
// is the default (DefaultRetainSucceeded, ...); a negative duration keeps
// that status's jobs forever. A job's log entry is never pruned: the log
// is the audit record, so the chain still verifies, the job still reads
// (as StatusPruned) and its id is still deduplicated.
type Retention struct {
	Succeeded time.Duration
	Cancelled time.Duration
	Failed    time.Duration
}

// withDefaults fills zero durations with the defaults.
func (r Retention) withDefaults() Retention {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&r.Succeeded, DefaultRetainSucceeded}, {&r.Cancelled, DefaultRetainCancelled}, {&r.Failed, DefaultRetainFailed}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	return r
}

// cutoffs turns the retention into the times before which finished jobs
// are pruned, as of now; a negative duration gives the zero time, which
// prunes nothing.
func (r Retention) cutoffs(now time.Time) driver.PruneParams {
	cut := func(d time.Duration) time.Time {
		if d < 0 {
			return time.Time{}
		}
		return now.Add(-d)
	}
	r = r.withDefaults()
	return driver.PruneParams{SucceededBefore: cut(r.Succeeded), CancelledBefore: cut(r.Cancelled), FailedBefore: cut(r.Failed),
		Limit: pruneBatch}
}

// Prune deletes the state of jobs that finished longer ago than r keeps
// them, on both sides, in batches of short transactions, until no more is
// due or a bounded number of batches ran (the next call goes on). The
// leader's maintenance calls it (worker.Config.Retention); it is safe on
// several nodes at once. It counts the rows into ordo_jobs_pruned_total.
func (q *Queue) Prune(ctx context.Context, r Retention) (driver.PruneResult, error) {
	return q.PruneAt(ctx, r, q.now())
}

// PruneAt is Prune with the cutoffs taken at now rather than at the
// queue's clock: the maintenance leader prunes as of the moment its round
// began, the moment up to which it recorded the activity of the jobs it
// then prunes.
func (q *Queue) PruneAt(ctx context.Context, r Retention, now time.Time) (driver.PruneResult, error) {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	var total driver.PruneResult
	p := r.cutoffs(now)
	for range prunePerCall {
		n, err := q.backend.PruneFinished(ctx, p)
		total.HLC, total.Legacy = total.HLC+n.HLC, total.Legacy+n.Legacy
		q.metrics.JobsPruned.WithLabelValues("hlc").Add(float64(n.HLC))
		q.metrics.JobsPruned.WithLabelValues("legacy").Add(float64(n.Legacy))
		if err != nil {
			return total, fmt.Errorf("pruning finished jobs: %w", err)
		}
		if n.HLC < p.Limit && n.Legacy < p.Limit {
			break
		}
	}
	return total, nil
}
