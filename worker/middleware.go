package worker

import (
	"context"

	"github.com/ordo-sched/ordo/queue"
)

// WorkMiddleware wraps the running of every job a Client works, as an
// http.Handler wraps another: it gets the job's lease and next, which runs
// the rest of the chain and then the handler, and returns the job's
// outcome (nil completes it; see Worker). It may change ctx for next (a
// span, a logger, a deadline), do work before and after, or return
// without calling next. The worker's events still report the outcome
// returned.
type WorkMiddleware func(ctx context.Context, l *queue.Lease, next func(ctx context.Context) error) error

// InsertMiddleware wraps every insert through a Client (Insert, InsertTx,
// InsertMany): it gets the jobs about to be enqueued and next, which
// enqueues them (after the rest of the chain). It may change the jobs
// (their payload, run-at, priority, ...), observe the results,
// or refuse the insert by returning an error without calling next.
type InsertMiddleware func(ctx context.Context, jobs []queue.Job, next func(ctx context.Context, jobs []queue.Job) ([]queue.EnqueueResult, error)) ([]queue.EnqueueResult, error)

// wrapWork applies mws (the first outermost) around work.
func wrapWork(mws []WorkMiddleware, l *queue.Lease, work func(ctx context.Context) error) func(ctx context.Context) error {
	for i := len(mws) - 1; i >= 0; i-- {
		mw, next := mws[i], work
		work = func(ctx context.Context) error { return mw(ctx, l, next) }
	}
	return work
}

// insertThrough runs enqueue for jobs through mws (the first outermost).
func insertThrough(ctx context.Context, mws []InsertMiddleware, jobs []queue.Job,
	enqueue func(ctx context.Context, jobs []queue.Job) ([]queue.EnqueueResult, error)) ([]queue.EnqueueResult, error) {
	for i := len(mws) - 1; i >= 0; i-- {
		mw, next := mws[i], enqueue
		enqueue = func(ctx context.Context, jobs []queue.Job) ([]queue.EnqueueResult, error) { return mw(ctx, jobs, next) }
	}
	return enqueue(ctx, jobs)
}
