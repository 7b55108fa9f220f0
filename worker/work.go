package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/queue"
)

// Work runs one job of args through w synchronously, without a database,
// for users' own tests: args make the same JSON round trip as in
// production (so a field that does not survive marshalling shows up here),
// a panic is recovered, the args' Timeout method applies, and the result
// is classified as a client would (JobCancel, JobSnooze, NoRetry, ...).
// The job is attempt 1 of 25 of tenant "test".
func Work[T Args](ctx context.Context, w Worker[T], args T) Result {
	payload, err := json.Marshal(args)
	if err != nil {
		return Result{Outcome: OutcomeDiscarded, Err: fmt.Errorf("worker: marshalling %T: %w", args, err)}
	}
	var decoded T
	if err := json.Unmarshal(payload, &decoded); err != nil {
		return classify(&DecodeError{Kind: args.Kind(), Type: reflect.TypeFor[T]().String(), Err: err})
	}
	now := time.Now()
	return WorkJob(ctx, w, &Job[T]{
		Lease: queue.Lease{
			JobID: uuid.New(), TenantID: "test", Kind: args.Kind(), Payload: payload,
			Attempt: 1, MaxAttempts: 25, RunAt: now, CreatedAt: now,
		},
		Args: decoded,
	})
}

// WorkJob is Work for a job built by the caller (to test, say, what a
// handler does on its last attempt). job.Args is used as is.
func WorkJob[T Args](ctx context.Context, w Worker[T], job *Job[T]) Result {
	timeout, _ := argsTimeout(job.Args)
	err := supervise(ctx, func(ctx context.Context) error { return w.Work(ctx, job) }, timeout, 5*time.Second, nil, nil, nil)
	return classify(err)
}
