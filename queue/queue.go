// Package queue is ordo's job queue: enqueue, dequeue with leases, and the
// state changes of a job's life, in the four modes of the HLC migration
// guide (legacy, dual-write, HLC reads, HLC only), over a storage backend
// (a driver.Driver: store/postgres or store/sqlite).
//
// On the HLC side every job is appended to its (tenant, partition) chain:
// the chain's head is locked, the job is stamped with clock.Receive(head),
// linked to the head, and the head moved, all in one transaction, so t_hlc
// strictly increases along every chain and chain order equals HLC order.
package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/metrics"
)

// Job is what a producer enqueues.
type Job struct {
	TenantID     string
	PartitionKey string // "" is the default partition; maps to the legacy project_id
	Kind         string
	Payload      []byte // JSON
	// Priority orders legacy reads (higher first); HLC reads ignore it.
	Priority int
	// RunAt delays the job; zero means now.
	RunAt time.Time
	// IdempotencyKey, when set, replaces the payload in the job id, so two
	// enqueues with the same key are one job. A key names one payload: an
	// enqueue under a key whose job has another payload is refused with
	// ErrIdempotencyConflict, unless KeyDerived.
	IdempotencyKey string
	// KeyDerived says IdempotencyKey was derived from part of the payload
	// (worker.UniqueOpts: some fields, a period), so that jobs differing
	// elsewhere are meant to be one job: the first one's payload stands and
	// a later enqueue is reported Deduplicated, not refused.
	KeyDerived bool
	// MaxAttempts bounds runs including retries; 0 means the default (25).
	MaxAttempts int
	// Metadata travels with the job outside its payload: it is not hashed,
	// so it changes neither the job id nor the chain, and a deduplicated
	// enqueue keeps the first job's. Lease.Metadata and JobInfo.Metadata
	// give it back; the tracing package carries a trace context in it.
	// Limits: driver.EncodeMetadata.
	Metadata map[string]string
}

// Config configures a Queue. Backend and Clock are required.
type Config struct {
	Backend driver.Driver
	Clock   *hlc.Clock
	Options Options
	// Now is the wall clock for run_at, leases and timestamps; default
	// time.Now. Tests inject a fake one, normally the HLC's own.
	Now     func() time.Time
	Metrics *metrics.Metrics // default: unregistered metrics
	Logger  *slog.Logger
	// DefaultMaxAttempts applies when a Job sets none; default 25.
	DefaultMaxAttempts int
	// Backoff gives the delay before retry number attempt (1-based); default
	// exponential with jitter: 1s * 2^(attempt-1), capped at 1h, +-25%.
	Backoff func(attempt int) time.Duration
	// MaxPayloadBytes refuses larger payloads; default 1 MiB.
	MaxPayloadBytes int
	// MaxBatch caps one group-commit transaction (of enqueues, or of
	// transitions); default 1000.
	MaxBatch int
	// SkipReconcile leaves backfill and drain to the operator instead of
	// running them when the read side changes (see SetOptions).
	SkipReconcile bool
	// AfterDequeue, if set, is called with every non-empty batch Dequeue
	// hands out (after VerifyOnDequeue), e.g. to sign a batch snapshot
	// (audit.Snapshotter.SnapshotBatch). It must not fail the batch: the
	// jobs are leased already.
	AfterDequeue func(ctx context.Context, leases []Lease)
}

// Queue is safe for concurrent use.
type Queue struct {
	backend driver.Driver
	clock   *hlc.Clock
	now     func() time.Time
	metrics *metrics.Metrics
	log     *slog.Logger
	cfg     Config

	// modeMu orders option changes against writes: enqueues hold it for
	// reading, so once SetOptions holds it no write of the old mode is in
	// flight and reconciling afterwards sees every such write.
	modeMu sync.RWMutex
	opts   Options

	// reconcileMu keeps this process's dequeues and job state changes out
	// of the way of a reconciliation: a completion whose two fenced
	// updates (legacy side, HLC side) straddled a drain or backfill
	// copying that job to the other side would finish one copy and leave
	// the other running, and a dequeue that leased a job while it was
	// being copied would leave the copy pending, to run a second time.
	reconcileMu sync.RWMutex

	// enqueues and transitions coalesce concurrent calls (group commit).
	enqueues    coalescer[*driver.Prepared, EnqueueResult]
	transitions coalescer[driver.Transition, struct{}]

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
}

// Subscribe returns a channel that receives a value (coalesced, never
// blocking the writer) after every enqueue through this Queue commits, so
// workers in the same process wake at once. Cancel removes it.
func (q *Queue) Subscribe() (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	q.subMu.Lock()
	if q.subs == nil {
		q.subs = map[chan struct{}]struct{}{}
	}
	q.subs[c] = struct{}{}
	q.subMu.Unlock()
	return c, func() {
		q.subMu.Lock()
		delete(q.subs, c)
		q.subMu.Unlock()
	}
}

func (q *Queue) notify() {
	q.subMu.Lock()
	defer q.subMu.Unlock()
	for c := range q.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// New validates cfg and returns a Queue. When the options read one side,
// jobs left only on the other side by an earlier mode are first brought
// over (see SetOptions), so none is stranded by a restart in a new mode.
func New(ctx context.Context, cfg Config) (*Queue, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Clock.SetMaxDrift(time.Duration(cfg.Options.MaxClockDriftMs) * time.Millisecond); err != nil {
		return nil, err
	}
	q := &Queue{
		backend: cfg.Backend, clock: cfg.Clock, now: cfg.Now, metrics: cfg.Metrics, log: cfg.Logger,
		cfg: cfg, opts: cfg.Options,
	}
	q.enqueues = coalescer[*driver.Prepared, EnqueueResult]{max: cfg.MaxBatch, batch: q.writeBatch, one: q.writeOne}
	q.transitions = coalescer[driver.Transition, struct{}]{max: cfg.MaxBatch, batch: q.transitionBatch, one: q.transitionOne}
	if !cfg.SkipReconcile {
		if err := q.reconcile(ctx, cfg.Options.Mode()); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// DefaultBackoff is exponential with jitter: about 1s, 2s, 4s, ... capped
// at one hour, each +-25%, so retries of jobs that failed together spread.
func DefaultBackoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt-1, 0), 12)
	d = min(d, time.Hour)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// Options returns the options in force.
func (q *Queue) Options() Options {
	q.modeMu.RLock()
	defer q.modeMu.RUnlock()
	return q.opts
}

// Mode returns the mode in force.
func (q *Queue) Mode() Mode { return q.Options().Mode() }

// Clock returns the queue's HLC.
func (q *Queue) Clock() *hlc.Clock { return q.clock }

// Now reads the queue's wall clock (Config.Now), the one run_at, leases
// and uniqueness periods are measured by.
func (q *Queue) Now() time.Time { return q.now() }

// Metrics returns the queue's metrics.
func (q *Queue) Metrics() *metrics.Metrics { return q.metrics }

// Backend returns the queue's backend.
func (q *Queue) Backend() driver.Driver { return q.backend }

// SetOptions changes the options of a running queue. Writes already in
// flight finish under the old options; later ones use the new. When the
// read side changes, jobs that only the other side holds are brought over
// so that none is stranded: switching reads to HLC backfills pending legacy
// jobs into their chains, switching reads to legacy drains HLC-only jobs
// into the legacy table (unless Config.SkipReconcile).
func (q *Queue) SetOptions(ctx context.Context, o Options) error {
	o = o.withDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	if err := q.clock.SetMaxDrift(time.Duration(o.MaxClockDriftMs) * time.Millisecond); err != nil {
		return err
	}
	q.modeMu.Lock()
	q.opts = o
	q.modeMu.Unlock()
	q.log.Info("queue options changed", "mode", o.Mode().String(), "verify_on_dequeue", o.VerifyOnDequeue, "max_clock_drift_ms", o.MaxClockDriftMs)
	if q.cfg.SkipReconcile {
		return nil
	}
	return q.reconcile(ctx, o.Mode())
}

func (q *Queue) reconcile(ctx context.Context, m Mode) error {
	q.reconcileMu.Lock()
	defer q.reconcileMu.Unlock()
	if m.ReadsHlc() {
		n, err := q.Backfill(ctx, "")
		if err != nil {
			return fmt.Errorf("queue: backfilling legacy jobs for HLC reads: %w", err)
		}
		if n > 0 {
			q.log.Info("backfilled legacy jobs into the HLC chain", "jobs", n)
		}
		return nil
	}
	n, err := q.RollbackDrain(ctx)
	if err != nil {
		return fmt.Errorf("queue: draining HLC-only jobs for legacy reads: %w", err)
	}
	if n > 0 {
		q.log.Info("drained HLC-only jobs into the legacy table", "jobs", n)
	}
	return nil
}

// MaxRunAt is the latest run_at a job may have: the last millisecond of
// year 9999 UTC. A later one could not be written as RFC 3339 (four-digit
// years), so every read of the job (JSON, the API, the CLI) would fail.
var MaxRunAt = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)

// prepare validates a job and derives its canonical payload, hash and id.
func (q *Queue) prepare(j Job, now time.Time) (*driver.Prepared, error) {
	if err := chain.ValidateTenantID(j.TenantID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := chain.ValidatePartitionKey(j.PartitionKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := chain.ValidateKind(j.Kind); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if err := chain.ValidateIdempotencyKey(j.IdempotencyKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if len(j.Payload) > q.cfg.MaxPayloadBytes {
		return nil, fmt.Errorf("%w: payload is %d bytes, at most %d allowed", ErrInvalidJob, len(j.Payload), q.cfg.MaxPayloadBytes)
	}
	canonical, err := chain.Canonicalize(j.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	if hasNULEscape(canonical) {
		// PostgreSQL's jsonb cannot store U+0000; refusing it on both
		// backends keeps them interchangeable.
		return nil, fmt.Errorf("%w: payload contains the character U+0000, which ordo does not store", ErrInvalidJob)
	}
	if j.MaxAttempts < 0 || j.MaxAttempts > 1000 {
		return nil, fmt.Errorf("%w: max_attempts = %d, want 0 (default) to 1000", ErrInvalidJob, j.MaxAttempts)
	}
	if j.Priority < -32768 || j.Priority > 32767 {
		return nil, fmt.Errorf("%w: priority = %d, want -32768..32767", ErrInvalidJob, j.Priority)
	}
	if j.RunAt.After(MaxRunAt) {
		return nil, fmt.Errorf("%w: run_at %s is after %s, the last time RFC 3339 can write", ErrInvalidJob,
			j.RunAt.UTC().Format(time.RFC3339Nano), MaxRunAt.Format(time.RFC3339Nano))
	}
	metadata, err := driver.EncodeMetadata(j.Metadata)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	p := &driver.Prepared{
		TenantID: j.TenantID, PartitionKey: j.PartitionKey, Kind: j.Kind,
		Payload: canonical, PayloadHash: sha256Sum(canonical), Priority: j.Priority,
		RunAt: j.RunAt, IdempotencyKey: j.IdempotencyKey, MaxAttempts: j.MaxAttempts,
		Metadata: metadata, Status: StatusPending, CreatedAt: now,
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = q.cfg.DefaultMaxAttempts
	}
	if p.RunAt.IsZero() || !p.RunAt.After(now) {
		p.RunAt = now
	} else {
		p.Status = StatusScheduled
	}
	p.RunAt = p.RunAt.Truncate(time.Millisecond)
	p.CreatedAt = p.CreatedAt.Truncate(time.Millisecond)
	p.JobID, err = chain.JobID(p.TenantID, p.PartitionKey, p.Kind, p.IdempotencyKey, p.PayloadHash)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	return p, nil
}

// hasNULEscape finds the escape \u0000 in canonical JSON, where a literal
// backslash is always written as \\ (so count the backslashes before it).
func hasNULEscape(b []byte) bool {
	for i := 0; ; {
		k := bytes.Index(b[i:], []byte(`u0000`))
		if k < 0 {
			return false
		}
		k += i
		n := 0
		for j := k - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		i = k + 5
	}
}

// Enqueue adds one job. Concurrent calls coalesce into one transaction
// (group commit), so throughput on a busy chain is not one commit per job.
//
// If ctx ends while the job is being written, Enqueue returns ctx's error
// and the job may or may not have been written; since job ids are
// deterministic, enqueuing it again is safe and reports Deduplicated.
func (q *Queue) Enqueue(ctx context.Context, j Job) (EnqueueResult, error) {
	p, err := q.prepare(j, q.now())
	if err != nil {
		return EnqueueResult{}, err
	}
	res, err := q.enqueues.submit(ctx, p)
	if err == nil && res.Deduplicated && j.IdempotencyKey != "" && !j.KeyDerived {
		// Nothing was written for this job; whether that is a match or a
		// conflict depends on the payload of the job its key names.
		err = q.checkKeyed(ctx, []*driver.Prepared{p}, []bool{true}, []EnqueueResult{res}, true, false)
	}
	return res, err
}

// checkKeyed refuses, with ErrIdempotencyConflict, a job of jobs marked
// in keyed (its key was given, not derived) whose id names a job with
// another payload: an earlier job of the same call, or the stored one,
// whose hash res reports for a deduplicated job (res nil: before the
// write) or, failing that and when lookup is set, a read finds.
// batch says jobs are a batch, whose refusal names the job by index.
func (q *Queue) checkKeyed(ctx context.Context, jobs []*driver.Prepared, keyed []bool, res []EnqueueResult, lookup, batch bool) error {
	first := map[uuid.UUID]chain.Hash{}
	for i, p := range jobs {
		if !keyed[i] {
			continue
		}
		want, seen := first[p.JobID]
		switch {
		case seen:
		case res != nil && !res[i].Deduplicated:
			first[p.JobID] = p.PayloadHash // written by this call
			continue
		case res != nil && !res[i].PayloadHash.IsZero():
			want = res[i].PayloadHash
		case !lookup:
			continue // a legacy-only job, read inside the caller's transaction only
		default:
			info, err := q.backend.GetJob(ctx, driver.JobRef{TenantID: p.TenantID, JobID: p.JobID})
			if errors.Is(err, ErrJobNotFound) {
				first[p.JobID] = p.PayloadHash
				continue
			}
			if err != nil {
				return err
			}
			want = info.PayloadHash
		}
		first[p.JobID] = want
		if want != p.PayloadHash {
			err := fmt.Errorf("%w: key %q of kind %s names job %s, whose payload hash is %s, not %s", ErrIdempotencyConflict,
				p.IdempotencyKey, p.Kind, p.JobID, want, p.PayloadHash)
			if batch {
				err = fmt.Errorf("job %d: %w", i, err) // as prepareAll names a batch's job
			}
			return err
		}
	}
	return nil
}

// EnqueueMany adds a batch in one transaction: one head lock per chain,
// links computed in order, rows written in bulk. Either every job is
// written (or found deduplicated) or none is.
func (q *Queue) EnqueueMany(ctx context.Context, jobs []Job) ([]EnqueueResult, error) {
	now := q.now()
	prepared, err := q.prepareAll(jobs, now)
	if err != nil {
		return nil, err
	}
	// Checked before writing, so a conflict writes nothing of the batch.
	// (A conflicting job enqueued by another caller between this check and
	// the write is found deduplicated instead.)
	if keyed, any := keyedJobs(jobs); any {
		if err := q.checkKeyed(ctx, prepared, keyed, nil, true, true); err != nil {
			return nil, err
		}
	}
	return q.write(ctx, prepared, now)
}

// keyedJobs marks the jobs whose idempotency key the caller gave.
func keyedJobs(jobs []Job) (keyed []bool, any bool) {
	keyed = make([]bool, len(jobs))
	for i, j := range jobs {
		keyed[i] = j.IdempotencyKey != "" && !j.KeyDerived
		any = any || keyed[i]
	}
	return keyed, any
}

// prepareAll prepares a batch; the first invalid job fails it, named by
// its index.
func (q *Queue) prepareAll(jobs []Job, now time.Time) ([]*driver.Prepared, error) {
	prepared := make([]*driver.Prepared, len(jobs))
	for i, j := range jobs {
		p, err := q.prepare(j, now)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		prepared[i] = p
	}
	return prepared, nil
}

// EnqueueTx adds jobs inside the caller's transaction tx (a pgx.Tx on
// PostgreSQL, a *sql.Tx on SQLite): they exist if and only if the caller
// commits. It does not take part in group commit.
func (q *Queue) EnqueueTx(ctx context.Context, tx any, jobs ...Job) ([]EnqueueResult, error) {
	now := q.now()
	prepared, err := q.prepareAll(jobs, now)
	if err != nil {
		return nil, err
	}
	res, err := q.writeWith(ctx, prepared, now, func(b *driver.EnqueueBatch) ([]EnqueueResult, error) { return q.backend.EnqueueTx(ctx, tx, b) })
	if err != nil {
		return nil, err
	}
	// After the write, inside the caller's transaction: a conflict fails
	// the call, and the caller's rollback takes the batch back.
	if keyed, any := keyedJobs(jobs); any {
		if err := q.checkKeyed(ctx, prepared, keyed, res, false, true); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// write runs one batch under the current mode.
func (q *Queue) write(ctx context.Context, jobs []*driver.Prepared, now time.Time) ([]EnqueueResult, error) {
	return q.writeWith(ctx, jobs, now, func(b *driver.EnqueueBatch) ([]EnqueueResult, error) { return q.backend.Enqueue(ctx, b) })
}

// writeWith runs one batch under the current mode through do.
func (q *Queue) writeWith(ctx context.Context, jobs []*driver.Prepared, now time.Time, do func(*driver.EnqueueBatch) ([]EnqueueResult, error)) ([]EnqueueResult, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	q.modeMu.RLock()
	defer q.modeMu.RUnlock()
	m := q.opts.Mode()
	start := time.Now()

	// The same job twice in one batch is written once; the later ones are
	// reported as deduplicated.
	unique := jobs
	var slot []int // for each job, its index in unique; nil when no repeats
	if len(jobs) > 1 {
		first := make(map[uuid.UUID]int, len(jobs))
		for i, j := range jobs {
			if k, seen := first[j.JobID]; seen {
				if slot == nil {
					slot = make([]int, len(jobs))
					for x := range i {
						slot[x] = x
					}
					unique = append([]*driver.Prepared(nil), jobs[:i]...)
				}
				slot[i] = k
				continue
			}
			if slot == nil { // no repeat yet: unique is still jobs itself
				first[j.JobID] = i
				continue
			}
			first[j.JobID] = len(unique)
			slot[i] = len(unique)
			unique = append(unique, j)
		}
	}

	b := driver.NewEnqueueBatch(unique, m.WritesLegacy(), m.WritesHlc(), q.clock, now)
	res, err := do(b)
	if err != nil {
		if errors.Is(err, hlc.ErrClockDrift) {
			q.metrics.ClockDriftRefusals.Inc()
		}
		return nil, err
	}
	if slot != nil {
		all := make([]EnqueueResult, len(jobs))
		for i := range jobs {
			all[i] = res[slot[i]]
			if unique[slot[i]] != jobs[i] { // a repeat of an earlier job
				all[i].Deduplicated = true
			}
		}
		res = all
	}
	for _, r := range res {
		switch {
		case r.Deduplicated && m.WritesHlc():
			q.metrics.HlcDeduplicated.Inc()
		case r.Deduplicated:
			q.metrics.LegacyDeduplicated.Inc()
		default:
			if m.WritesHlc() {
				q.metrics.HlcEnqueues.Inc()
			}
			if m.WritesLegacy() {
				q.metrics.LegacyEnqueues.Inc()
			}
		}
	}
	if m.WritesHlc() {
		q.metrics.HlcEnqueueDuration.Observe(time.Since(start).Seconds())
	}
	q.notify()
	return res, nil
}

// DequeueOptions says what to lease.
type DequeueOptions struct {
	Owner            string        // lease owner; default the clock's node id
	Limit            int           // batch size; default 1, at most 1000
	LeaseFor         time.Duration // lease length; default 30s
	Kinds            []string      // only these kinds; empty means all
	TenantID         string        // only this tenant; empty means all
	StrictPartitions bool          // one running job per (tenant, partition), in chain order
	FairTenants      bool          // share the batch round-robin between tenants
	FairAfter        string        // start the round after this tenant (e.g. the last one served)
}

// Dequeue leases up to opts.Limit jobs whose run-at has come, in the
// mode's order: t_hlc ascending with HLC reads, else priority descending
// then created_at. With VerifyOnDequeue, a job whose chain entry does not
// verify is withheld, marked chain_violation, and counted in
// scheduler_chain_verification_issues_total.
func (q *Queue) Dequeue(ctx context.Context, opts DequeueOptions) ([]Lease, error) {
	if opts.Owner == "" {
		opts.Owner = q.clock.NodeID()
	}
	if !utf8.ValidString(opts.Owner) || strings.ContainsFunc(opts.Owner, unicode.IsControl) {
		return nil, fmt.Errorf("%w: lease owner %q: want valid UTF-8 without control characters", ErrInvalidJob, opts.Owner)
	}
	if opts.Limit == 0 {
		opts.Limit = 1
	}
	if opts.Limit < 0 || opts.Limit > 1000 {
		return nil, fmt.Errorf("queue: dequeue limit %d, want 1..1000", opts.Limit)
	}
	if opts.LeaseFor == 0 {
		opts.LeaseFor = 30 * time.Second
	}
	if opts.LeaseFor < time.Second {
		return nil, fmt.Errorf("queue: lease length %v, want at least 1s", opts.LeaseFor)
	}
	if opts.TenantID != "" {
		if err := chain.ValidateTenantID(opts.TenantID); err != nil {
			return nil, err
		}
	}
	leases, err := q.lease(ctx, opts)
	if err != nil {
		return nil, err
	}
	q.afterDequeue(ctx, leases)
	return leases, nil
}

// lease is Dequeue without the AfterDequeue hook, under reconcileMu (the
// hook, a caller's function, runs outside it).
func (q *Queue) lease(ctx context.Context, opts DequeueOptions) ([]Lease, error) {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	o := q.Options()
	m := o.Mode()
	now := q.now().Truncate(time.Millisecond)
	start := time.Now()
	leases, err := q.backend.Dequeue(ctx, driver.DequeueParams{
		HLCOrder: m.ReadsHlc(), Limit: opts.Limit, Owner: opts.Owner, Token: uuid.New(),
		Now: now, LeaseUntil: now.Add(opts.LeaseFor), Kinds: opts.Kinds, TenantID: opts.TenantID,
		StrictPartitions: opts.StrictPartitions, WithChain: o.VerifyOnDequeue, FairTenants: opts.FairTenants,
		FairAfter: opts.FairAfter,
	})
	if err != nil {
		return nil, err
	}
	ordering := "legacy"
	if m.ReadsHlc() {
		ordering = "hlc"
		q.metrics.HlcDequeues.Inc()
		q.metrics.HlcDequeuedEntries.Add(float64(len(leases)))
	} else {
		q.metrics.LegacyDequeues.Add(float64(len(leases)))
	}
	q.metrics.DequeueDuration.WithLabelValues(ordering).Observe(time.Since(start).Seconds())
	if !o.VerifyOnDequeue {
		return leases, nil
	}
	kept := leases[:0]
	for _, l := range leases {
		if l.Chain == nil {
			kept = append(kept, l)
			continue
		}
		if reason := VerifyEntry(l.JobID, l.Chain); reason != "" {
			q.metrics.ChainIssues.Inc()
			q.log.Error("chain violation on dequeue; job withheld", "job_id", l.JobID, "tenant_id", l.TenantID, "t_hlc", l.THLC, "reason", reason)
			if err := q.backend.MarkChainViolation(ctx, driver.ViolationParams{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Reason: reason, Now: now}); err != nil {
				return nil, fmt.Errorf("queue: marking job %s as a chain violation: %w", l.JobID, err)
			}
			continue
		}
		kept = append(kept, l)
	}
	return kept, nil
}

func (q *Queue) afterDequeue(ctx context.Context, leases []Lease) {
	if q.cfg.AfterDequeue != nil && len(leases) > 0 {
		q.cfg.AfterDequeue(ctx, leases)
	}
}

// VerifyEntry checks one stored chain entry against its predecessor and
// its stored payload (chain.CheckEntry, chain.CheckSuccession: the rules
// the verifier applies too), and returns "" or the first fault found.
func VerifyEntry(jobID uuid.UUID, e *ChainEntry) string {
	s := chain.Stored{JobID: jobID, THLC: []byte(e.THLC), PayloadHash: e.PayloadHash, PrevLink: e.PrevLink,
		PrevNull: e.PrevLinkNull, Link: e.Link}
	own, jsonErr := chain.CheckEntry(&s, e.Payload)
	succ := chain.CheckSuccession(&s, e.Pos == 0, chain.Previous{Exists: e.HasPredecessor, Link: e.PredecessorLink, THLC: []byte(e.PredecessorTHLC)})
	switch f := own | succ; {
	case f.Has(chain.FaultPayloadHash) && jsonErr != nil:
		return fmt.Sprintf("payload hash mismatch: the stored payload is not valid JSON: %v", jsonErr)
	case f.Has(chain.FaultPayloadHash):
		return "payload hash mismatch: the stored payload no longer hashes to payload_hash"
	case f.Has(chain.FaultGenesis) && e.Pos == 0:
		return "bad genesis: the first entry of the chain has a prev_link"
	case f.Has(chain.FaultGenesis):
		return "bad genesis: prev_link is NULL inside the chain"
	case f.Has(chain.FaultPredecessor) && !e.HasPredecessor:
		return fmt.Sprintf("broken predecessor: no entry at chain position %d", e.Pos-1)
	case f.Has(chain.FaultPredecessor):
		return "broken predecessor: prev_link is not the previous entry's link"
	case f.Has(chain.FaultTHLCOrder):
		return fmt.Sprintf("t_hlc not increasing: %s is not after the previous entry's %s", e.THLC, e.PredecessorTHLC)
	case f.Has(chain.FaultLink):
		return "link mismatch: the stored link is not SHA-256(prev_link || job_id || t_hlc || payload_hash)"
	}
	return ""
}

// CompleteTx marks a leased job succeeded inside the caller's transaction
// tx (a pgx.Tx on PostgreSQL, a *sql.Tx on SQLite), so that a handler's
// own writes and its job's completion commit together, or roll back
// together and leave the job running under its lease (to be retried when
// the worker fails it, or when the lease expires). Fenced by the lease as
// Complete is: ErrLeaseLost if it was lost, and nothing changes. It does
// not take part in group commit.
func (q *Queue) CompleteTx(ctx context.Context, tx any, l Lease) error {
	err := q.backend.TransitionJobTx(ctx, tx, driver.Transition{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Status: StatusSucceeded, Now: q.now()})
	if err != nil {
		return err
	}
	// Counted at the call, not the caller's commit, which the queue does
	// not see; a rolled-back completion is counted too.
	q.metrics.JobTransitions.WithLabelValues(string(StatusSucceeded)).Inc()
	return nil
}

// Complete marks a leased job succeeded. A worker whose lease was lost
// gets ErrLeaseLost and changes nothing.
func (q *Queue) Complete(ctx context.Context, l Lease) error {
	return q.transition(ctx, driver.Transition{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Status: StatusSucceeded, Now: q.now()})
}

// FailOptions refine Fail.
type FailOptions struct {
	NoRetry bool          // fail for good, even with attempts left
	Delay   time.Duration // retry after this instead of the backoff
}

// FailResult says what Fail did.
type FailResult struct {
	Retried bool
	RunAt   time.Time // when it will run again, if Retried
}

// Fail records a failed attempt. With attempts left (and no NoRetry) the
// job is rescheduled after the backoff; otherwise it ends failed.
func (q *Queue) Fail(ctx context.Context, l Lease, cause error, fo FailOptions) (FailResult, error) {
	msg := "failed"
	if cause != nil {
		msg = storableText(cause.Error())
	}
	now := q.now()
	t := driver.Transition{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Status: StatusFailed, Error: msg, Now: now}
	var res FailResult
	if !fo.NoRetry && l.Attempt < l.MaxAttempts {
		d := fo.Delay
		if d <= 0 {
			d = q.cfg.Backoff(l.Attempt)
		}
		t.Status, t.RunAt = StatusScheduled, now.Add(d).Truncate(time.Millisecond)
		res = FailResult{Retried: true, RunAt: t.RunAt}
	}
	return res, q.transition(ctx, t)
}

// Snooze puts a leased job back to run after d without counting the
// attempt.
func (q *Queue) Snooze(ctx context.Context, l Lease, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("queue: snooze for %v, want a non-negative duration", d)
	}
	now := q.now()
	return q.transition(ctx, driver.Transition{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Status: StatusScheduled, RunAt: now.Add(d).Truncate(time.Millisecond), UndoAttempt: true, Now: now})
}

// CancelLeased cancels a job from inside its handler (fenced by the lease).
func (q *Queue) CancelLeased(ctx context.Context, l Lease, reason string) error {
	return q.transition(ctx, driver.Transition{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Status: StatusCancelled, Error: storableText(reason), Now: q.now()})
}

// storableText is an error or reason text as both backends store it: a
// handler's error may hold anything, and a job must finish whatever its
// message says, so U+0000 (which PostgreSQL's text refuses) and invalid
// UTF-8 become U+FFFD instead of failing the write.
func storableText(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
}

func (q *Queue) transition(ctx context.Context, t driver.Transition) error {
	_, err := q.transitions.submit(ctx, t)
	if err != nil {
		return err
	}
	q.metrics.JobTransitions.WithLabelValues(string(t.Status)).Inc()
	return nil
}

// Cancel cancels a job of any tenant that has not finished, whoever
// holds it.
func (q *Queue) Cancel(ctx context.Context, jobID uuid.UUID, reason string) error {
	return q.cancel(ctx, driver.JobRef{JobID: jobID}, reason)
}

// CancelInTenant cancels a job of tenantID as Cancel does; a job of
// another tenant is ErrJobNotFound, decided by the database, as
// GetInTenant decides it. An empty or invalid tenantID is ErrInvalidJob,
// never "any tenant".
func (q *Queue) CancelInTenant(ctx context.Context, tenantID string, jobID uuid.UUID, reason string) error {
	if err := chain.ValidateTenantID(tenantID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	return q.cancel(ctx, driver.JobRef{TenantID: tenantID, JobID: jobID}, reason)
}

func (q *Queue) cancel(ctx context.Context, ref driver.JobRef, reason string) error {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	p := driver.CancelParams{JobID: ref.JobID, TenantID: ref.TenantID, Reason: storableText(reason), Now: q.now()}
	if err := q.backend.CancelJob(ctx, p); err != nil {
		return q.prunedAs(ctx, ref, err, ErrJobFinished)
	}
	q.metrics.JobTransitions.WithLabelValues(string(StatusCancelled)).Inc()
	return nil
}

// Extend moves a held lease's expiry to now + d and returns the lease with
// its new expiry.
func (q *Queue) Extend(ctx context.Context, l Lease, d time.Duration) (Lease, error) {
	if d < time.Second {
		return l, fmt.Errorf("queue: lease extension %v, want at least 1s", d)
	}
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	now := q.now()
	until := now.Add(d).Truncate(time.Millisecond)
	if err := q.backend.ExtendLease(ctx, driver.ExtendParams{JobID: l.JobID, TenantID: l.TenantID, Token: l.Token, Until: until, Now: now}); err != nil {
		return l, err
	}
	l.ExpiresAt = until
	return l, nil
}

// RescueExpired returns jobs whose lease expired to the queue (or fails
// them if that was their last attempt) and reports how many.
func (q *Queue) RescueExpired(ctx context.Context) (rescued, failed int, err error) {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	for {
		r, err := q.backend.RescueExpired(ctx, driver.RescueParams{Now: q.now(), Limit: rescueBatch})
		rescued, failed = rescued+r.Rescued, failed+r.Failed
		q.metrics.LeaseExpiries.Add(float64(r.Rescued + r.Failed))
		if err != nil || r.Rescued+r.Failed < rescueBatch {
			return rescued, failed, err
		}
	}
}

// Get returns one job of any tenant, merged from both sides.
func (q *Queue) Get(ctx context.Context, jobID uuid.UUID) (JobInfo, error) {
	return q.backend.GetJob(ctx, driver.JobRef{JobID: jobID})
}

// GetInTenant returns one job of tenantID; a job of another tenant is
// ErrJobNotFound, decided by the database, not by comparing afterwards.
// An empty or invalid tenantID is ErrInvalidJob, never "any tenant".
func (q *Queue) GetInTenant(ctx context.Context, tenantID string, jobID uuid.UUID) (JobInfo, error) {
	if err := chain.ValidateTenantID(tenantID); err != nil {
		return JobInfo{}, fmt.Errorf("%w: %w", ErrInvalidJob, err)
	}
	return q.backend.GetJob(ctx, driver.JobRef{TenantID: tenantID, JobID: jobID})
}

// Backfill appends every legacy job in pending, scheduled or running that
// is not yet on the HLC side to its tenant's chain (all tenants when
// tenantID is ""), fully chained, with fresh t_hlc from the clock and the
// original created_at kept. It works in batches, can be interrupted and
// resumed, and running it again adds nothing.
func (q *Queue) Backfill(ctx context.Context, tenantID string) (int, error) {
	if tenantID != "" {
		if err := chain.ValidateTenantID(tenantID); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		legacy, err := q.backend.LegacyOnly(ctx, tenantID, reconcileBatch)
		if err != nil {
			return total, err
		}
		if len(legacy) == 0 {
			return total, nil
		}
		jobs := make([]*driver.Prepared, 0, len(legacy))
		for _, li := range legacy {
			p, err := fromLegacy(li)
			if err != nil {
				return total, err
			}
			jobs = append(jobs, p)
		}
		b := driver.NewEnqueueBatch(jobs, false, true, q.clock, q.now())
		n, err := q.backend.Backfill(ctx, b)
		total += n
		q.metrics.Backfilled.Add(float64(n))
		q.metrics.HlcEnqueues.Add(float64(n))
		if err != nil {
			return total, err
		}
		if n == 0 {
			// Every candidate got HLC state concurrently; the next round
			// will find others or none.
			continue
		}
	}
}

func fromLegacy(li JobInfo) (*driver.Prepared, error) {
	canonical, err := chain.Canonicalize(li.Payload)
	if err != nil {
		return nil, fmt.Errorf("queue: backfill: legacy job %s: %w", li.JobID, err)
	}
	return &driver.Prepared{
		TenantID: li.TenantID, PartitionKey: li.PartitionKey, Kind: li.Kind,
		Payload: canonical, PayloadHash: sha256Sum(canonical), JobID: li.JobID,
		Priority: li.Priority, RunAt: li.RunAt, MaxAttempts: li.MaxAttempts, Status: li.Status,
		CreatedAt: li.CreatedAt, Attempts: li.Attempts, LeaseOwner: li.LeaseOwner,
		LeaseToken: li.LeaseToken, LeaseExpiresAt: li.LeaseExpiresAt, LastError: li.LastError,
	}, nil
}

// RollbackDrain copies every job that exists only on the HLC side and has
// not finished into the legacy table, so that the guide's rollback (legacy
// reads, dual-write off) loses nothing. Running it again adds nothing.
func (q *Queue) RollbackDrain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := q.backend.DrainToLegacy(ctx, reconcileBatch, q.now())
		total += n
		q.metrics.DrainedToLegacy.Add(float64(n))
		if err != nil || n < reconcileBatch {
			return total, err
		}
	}
}

// Close stops accepting work and closes the backend.
func (q *Queue) Close() error {
	q.enqueues.close()
	q.transitions.close()
	return q.backend.Close()
}
