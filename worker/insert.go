package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/queue"
)

// InsertOpts refine an insert. Zero fields mean "not set": an args type's
// InsertOpts method fills them, then the kind's options (Client.Insert),
// then the queue's defaults.
type InsertOpts struct {
	PartitionKey string
	// Priority orders legacy reads (higher first); HLC reads ignore it.
	Priority int
	// RunAt delays the job; zero means now.
	RunAt time.Time
	// IdempotencyKey makes two inserts with the same key one job; the key
	// names one payload, and an insert of another payload under it fails
	// with queue.ErrIdempotencyConflict. (To make jobs that differ in some
	// fields one job, use Unique.ByFields.)
	IdempotencyKey string
	// MaxAttempts bounds runs, retries included.
	MaxAttempts int
	// Unique says what makes two inserts the same job (see UniqueOpts);
	// the zero value is the default, the same args.
	Unique UniqueOpts
	// Metadata travels with the job outside its args (queue.Job.Metadata):
	// not hashed, so it never makes two inserts different jobs. Insert
	// middleware may add to it, as the tracing package's does.
	Metadata map[string]string
}

// merge fills o's zero fields from d.
func (o InsertOpts) merge(d InsertOpts) InsertOpts {
	if o.PartitionKey == "" {
		o.PartitionKey = d.PartitionKey
	}
	if o.Priority == 0 {
		o.Priority = d.Priority
	}
	if o.RunAt.IsZero() {
		o.RunAt = d.RunAt
	}
	if o.IdempotencyKey == "" {
		o.IdempotencyKey = d.IdempotencyKey
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Unique.IsZero() {
		o.Unique = d.Unique
	}
	return o
}

// NewJob builds the queue.Job that inserting args for tenantID would
// enqueue, for callers that batch or use the queue directly. opts may be
// nil. Uniqueness other than the default (InsertOpts.Unique) needs the
// queue: use Insert, or UniqueJob.
func NewJob(tenantID string, args Args, opts *InsertOpts) (queue.Job, error) {
	j, o, err := newJob(tenantID, args, opts, nil)
	if err == nil && !o.Unique.IsZero() {
		err = errors.New("worker: NewJob cannot apply InsertOpts.Unique (it needs the queue); use Insert or UniqueJob")
	}
	return j, err
}

// UniqueJob is NewJob with InsertOpts.Unique applied against q.
func UniqueJob(ctx context.Context, q *queue.Queue, tenantID string, args Args, opts *InsertOpts) (queue.Job, error) {
	return buildJob(ctx, q, tenantID, args, opts, nil, false)
}

// buildJob is newJob with uniqueness applied; inTx says the insert runs
// in a caller's transaction, where the queue cannot be read.
func buildJob(ctx context.Context, q *queue.Queue, tenantID string, args Args, opts *InsertOpts, kinds map[string]*kindEntry, inTx bool) (queue.Job, error) {
	j, o, err := newJob(tenantID, args, opts, kinds)
	if err != nil {
		return j, err
	}
	get := q.Get
	if inTx {
		get = nil
	}
	if err := applyUnique(ctx, &j, o.Unique, q.Now(), get); err != nil {
		return queue.Job{}, err
	}
	return j, nil
}

func newJob(tenantID string, args Args, opts *InsertOpts, kinds map[string]*kindEntry) (queue.Job, InsertOpts, error) {
	if args == nil {
		return queue.Job{}, InsertOpts{}, errors.New("worker: insert of nil args")
	}
	kind := args.Kind()
	payload, err := json.Marshal(args)
	if err != nil {
		return queue.Job{}, InsertOpts{}, fmt.Errorf("worker: marshalling %T for kind %q: %w", args, kind, err)
	}
	var o InsertOpts
	if opts != nil {
		o = *opts
	}
	if withOpts, ok := args.(interface{ InsertOpts() InsertOpts }); ok {
		o = o.merge(withOpts.InsertOpts())
	}
	if e := kinds[kind]; e != nil {
		o = o.merge(InsertOpts{MaxAttempts: e.opts.MaxAttempts})
	}
	return queue.Job{
		TenantID: tenantID, PartitionKey: o.PartitionKey, Kind: kind, Payload: payload,
		Priority: o.Priority, RunAt: o.RunAt, IdempotencyKey: o.IdempotencyKey, MaxAttempts: o.MaxAttempts,
		Metadata: o.Metadata,
	}, o, nil
}

// Insert enqueues args as a job of kind args.Kind() for tenantID. opts may
// be nil.
func Insert(ctx context.Context, q *queue.Queue, tenantID string, args Args, opts *InsertOpts) (queue.EnqueueResult, error) {
	j, err := buildJob(ctx, q, tenantID, args, opts, nil, false)
	if err != nil {
		return queue.EnqueueResult{}, err
	}
	return q.Enqueue(ctx, j)
}

// InsertTx enqueues args inside the caller's transaction tx (a pgx.Tx on
// PostgreSQL, a *sql.Tx on SQLite): the job exists if and only if the
// caller commits.
func InsertTx(ctx context.Context, q *queue.Queue, tx any, tenantID string, args Args, opts *InsertOpts) (queue.EnqueueResult, error) {
	j, err := buildJob(ctx, q, tenantID, args, opts, nil, true)
	if err != nil {
		return queue.EnqueueResult{}, err
	}
	res, err := q.EnqueueTx(ctx, tx, j)
	if err != nil {
		return queue.EnqueueResult{}, err
	}
	return res[0], nil
}

// InsertManyParams is one job of InsertMany.
type InsertManyParams struct {
	TenantID string
	Args     Args
	Opts     *InsertOpts
}

// InsertMany enqueues a batch in one transaction: all or none.
func InsertMany(ctx context.Context, q *queue.Queue, params []InsertManyParams) ([]queue.EnqueueResult, error) {
	return insertMany(ctx, q, params, nil)
}

func insertMany(ctx context.Context, q *queue.Queue, params []InsertManyParams, kinds map[string]*kindEntry) ([]queue.EnqueueResult, error) {
	jobs, err := buildJobs(ctx, q, params, kinds)
	if err != nil {
		return nil, err
	}
	return q.EnqueueMany(ctx, jobs)
}

// buildJobs builds the jobs of InsertMany; the first bad one fails them,
// named by its index.
func buildJobs(ctx context.Context, q *queue.Queue, params []InsertManyParams, kinds map[string]*kindEntry) ([]queue.Job, error) {
	jobs := make([]queue.Job, len(params))
	for i, p := range params {
		j, err := buildJob(ctx, q, p.TenantID, p.Args, p.Opts, kinds, false)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		jobs[i] = j
	}
	return jobs, nil
}
