package queue

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// Backend is the storage a Queue runs on. store/postgres and store/sqlite
// implement it; both must pass the conformance suite in queue/queuetest.
//
// A Backend does SQL and nothing else: the Queue validates input, decides
// modes, retries and backoff, and supplies the chain arithmetic through
// EnqueueBatch.Append, so the two backends cannot drift apart in meaning.
//
// Every state change (TransitionJob, ExtendLease, CancelJob, RescueExpired,
// MarkChainViolation) applies to every representation the job has, legacy
// row and HLC state alike, in one transaction, whatever the current mode:
// that is what lets the read side switch, or roll back, without running a
// finished job again or stranding a pending one.
type Backend interface {
	// Enqueue writes a batch. Jobs whose id already exists (on either side)
	// are not written again: their result has Deduplicated set and carries
	// the stored t_hlc and link. Results are in the order of b.Jobs.
	Enqueue(ctx context.Context, b *EnqueueBatch) ([]EnqueueResult, error)

	// Dequeue leases up to p.Limit available jobs (status pending or
	// scheduled with run_at <= p.Now) in the requested order, skipping jobs
	// locked by concurrent dequeuers, sets them running with p.Owner,
	// p.Token and p.LeaseUntil, and increments their attempts.
	Dequeue(ctx context.Context, p DequeueParams) ([]Lease, error)

	// TransitionJob moves a leased job to t.Status, fenced by the lease
	// token: if no representation of the job holds t.Token, it returns
	// ErrLeaseLost and changes nothing.
	TransitionJob(ctx context.Context, t Transition) error

	// ExtendLease moves a held lease's expiry to until, fenced like
	// TransitionJob.
	ExtendLease(ctx context.Context, jobID, token uuid.UUID, until, now time.Time) error

	// CancelJob cancels a job that has not finished (whoever holds it; a
	// holder's later TransitionJob gets ErrLeaseLost). It returns
	// ErrJobNotFound for an unknown id and ErrJobFinished for a job already
	// succeeded, failed or cancelled.
	CancelJob(ctx context.Context, jobID uuid.UUID, reason string, now time.Time) error

	// RescueExpired returns running jobs whose lease expired before now to
	// pending (or to failed, when their last attempt expired), at most limit
	// of them, and reports how many it rescued and failed.
	RescueExpired(ctx context.Context, now time.Time, limit int) (rescued, failed int, err error)

	// MarkChainViolation withholds a leased job whose chain entry did not
	// verify: status chain_violation, reason in last_error. Fenced.
	MarkChainViolation(ctx context.Context, jobID, token uuid.UUID, reason string, now time.Time) error

	// GetJob returns one job, merged from both sides. ErrJobNotFound if it
	// exists on neither.
	GetJob(ctx context.Context, jobID uuid.UUID) (JobInfo, error)

	// LegacyOnly lists up to limit legacy jobs in status pending, scheduled
	// or running that have no HLC state yet, oldest first (created_at, id),
	// optionally for one tenant: the input of a backfill.
	LegacyOnly(ctx context.Context, tenantID string, limit int) ([]JobInfo, error)

	// Backfill appends the given legacy jobs to their chains (through
	// b.Append, as Enqueue does) and creates their HLC state, copying
	// status, attempts and lease from the legacy row and keeping
	// created_at. Jobs that meanwhile got HLC state are skipped.
	Backfill(ctx context.Context, b *EnqueueBatch) (int, error)

	// DrainToLegacy copies up to limit jobs that exist only on the HLC side
	// and are not finished into the legacy table (status, attempts and
	// lease included) and reports how many it copied.
	DrainToLegacy(ctx context.Context, limit int, now time.Time) (int, error)

	// Close releases the backend's resources.
	Close() error
}

// Leadership is implemented by backends that can elect one holder of a
// named duty at a time with an expiring lease.
type Leadership interface {
	// TryLead makes holder the leader of name until until, if nobody else
	// holds an unexpired lease (holder renewing its own lease succeeds),
	// and reports whether holder leads now.
	TryLead(ctx context.Context, name, holder string, until, now time.Time) (bool, error)
	// Resign gives up holder's lease of name, if it holds it.
	Resign(ctx context.Context, name, holder string) error
}

// Errors a Backend returns; the Queue passes them through.
var (
	ErrLeaseLost   = errors.New("queue: lease lost: the job's lease expired and was given to another worker, or the job was cancelled")
	ErrJobNotFound = errors.New("queue: job not found")
	ErrJobFinished = errors.New("queue: job already finished")
	ErrClosed      = errors.New("queue: closed")
)

// Status is a job's lifecycle state.
type Status string

const (
	StatusPending        Status = "pending"   // may run now (or at run_at)
	StatusScheduled      Status = "scheduled" // waits for run_at
	StatusRunning        Status = "running"   // leased
	StatusSucceeded      Status = "succeeded"
	StatusFailed         Status = "failed"          // after the last attempt, or failed without retry
	StatusCancelled      Status = "cancelled"       // by a user or handler
	StatusChainViolation Status = "chain_violation" // withheld by VerifyOnDequeue (HLC side only)
)

// Finished reports whether s is terminal.
func (s Status) Finished() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCancelled || s == StatusChainViolation
}

// Prepared is a validated job with everything derived from it computed
// once: canonical payload, payload hash, job id.
type Prepared struct {
	TenantID       string
	PartitionKey   string
	Kind           string
	Payload        []byte // RFC 8785 canonical JSON
	PayloadHash    chain.Hash
	JobID          uuid.UUID
	Priority       int
	RunAt          time.Time
	IdempotencyKey string
	MaxAttempts    int
	// Status is pending, or scheduled when RunAt is after the enqueue time.
	Status Status

	// Backfill only: the legacy row's state, carried over to the HLC side.
	CreatedAt      time.Time
	Attempts       int
	LeaseOwner     string
	LeaseToken     uuid.UUID
	LeaseExpiresAt time.Time
	LastError      string
}

// ChainKey identifies one chain.
type ChainKey struct{ TenantID, PartitionKey string }

// Head is a chain's head as read, under lock, from chain_heads.
type Head struct {
	Exists bool
	Link   chain.Hash
	THLC   hlc.Timestamp
	Count  int64 // entries in the chain; the next entry's chain_pos
}

// Entry is one log row to insert, computed by EnqueueBatch.Append.
type Entry struct {
	Job      *Prepared
	THLC     hlc.Timestamp
	THLCText string
	Pos      int64      // chain_pos
	PrevLink chain.Hash // zero for a genesis entry (stored as NULL)
	Link     chain.Hash
}

// EnqueueBatch is what the Queue hands a Backend to write.
type EnqueueBatch struct {
	Jobs   []*Prepared
	Legacy bool // write the legacy table
	HLC    bool // append to the chain and create HLC state
	Node   string
	Now    time.Time // updated_at of new rows; created_at comes from each Prepared.CreatedAt

	// stamp issues the timestamp of the entry following prev (zero: genesis).
	stamp func(prev hlc.Timestamp) (hlc.Timestamp, error)
}

// NewEnqueueBatch is for backend tests that drive a Backend directly.
func NewEnqueueBatch(jobs []*Prepared, legacy, hlcSide bool, clock *hlc.Clock, now time.Time) *EnqueueBatch {
	return &EnqueueBatch{Jobs: jobs, Legacy: legacy, HLC: hlcSide, Node: clock.NodeID(), Now: now, stamp: stamper(clock)}
}

func stamper(clock *hlc.Clock) func(prev hlc.Timestamp) (hlc.Timestamp, error) {
	return func(prev hlc.Timestamp) (hlc.Timestamp, error) {
		if prev.IsZero() {
			return clock.Now()
		}
		return clock.Receive(prev)
	}
}

// Append computes the entries that append jobs, in order, to the chain
// whose head is head, and the new head. The backend calls it while holding
// the chain's head lock, so t_hlc strictly increases along every chain and
// chain order equals HLC order however many nodes write. It fails with an
// *hlc.DriftError, and nothing must be written, when the head is further
// ahead of this node's wall clock than MaxClockDriftMs.
func (b *EnqueueBatch) Append(head Head, jobs []*Prepared) ([]Entry, Head, error) {
	entries := make([]Entry, len(jobs))
	var buf [hlc.MaxTextLen]byte
	for i, j := range jobs {
		t, err := b.stamp(head.THLC)
		if err != nil {
			return nil, head, err
		}
		text := string(t.AppendText(buf[:0]))
		var prev chain.Hash
		if head.Exists {
			prev = head.Link
		}
		link, err := chain.Link(prev, j.JobID, text, j.PayloadHash)
		if err != nil {
			return nil, head, err
		}
		entries[i] = Entry{Job: j, THLC: t, THLCText: text, Pos: head.Count, PrevLink: prev, Link: link}
		head = Head{Exists: true, Link: link, THLC: t, Count: head.Count + 1}
	}
	return entries, head, nil
}

// GroupByChain splits jobs by chain, keeping their relative order, and
// returns the chains in a stable order (sorted by key) so that concurrent
// batches lock heads in the same order and cannot deadlock.
func GroupByChain(jobs []*Prepared) ([]ChainKey, map[ChainKey][]*Prepared) {
	groups := map[ChainKey][]*Prepared{}
	var keys []ChainKey
	for _, j := range jobs {
		k := ChainKey{j.TenantID, j.PartitionKey}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], j)
	}
	sortChainKeys(keys)
	return keys, groups
}

func sortChainKeys(keys []ChainKey) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && less(keys[j], keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

func less(a, b ChainKey) bool {
	if a.TenantID != b.TenantID {
		return a.TenantID < b.TenantID
	}
	return a.PartitionKey < b.PartitionKey
}

// EnqueueResult reports what became of one job.
type EnqueueResult struct {
	JobID        uuid.UUID
	THLC         string     // canonical t_hlc; empty when written to the legacy table only
	Link         chain.Hash // zero when written to the legacy table only
	Deduplicated bool       // the job already existed; nothing was written
}

// DequeueParams asks a Backend for leases.
type DequeueParams struct {
	HLCOrder         bool // t_hlc order from the HLC side; else legacy order
	Limit            int
	Owner            string
	Token            uuid.UUID // one token per dequeue call; fences every lease it grants
	Now              time.Time
	LeaseUntil       time.Time
	Kinds            []string // only these kinds; empty means all
	TenantID         string   // only this tenant; empty means all
	StrictPartitions bool     // at most one running job per (tenant, partition), the earliest in chain order
	WithChain        bool     // fill Lease.Chain for jobs that have a chain entry
	// FairTenants shares the batch between tenants with available jobs
	// (round-robin: each tenant's earliest jobs first, in turns), so one
	// tenant's backlog cannot starve the others. Ignored with TenantID.
	FairTenants bool
	// FairAfter starts the round-robin at the first tenant after this one
	// (in tenant_id order, wrapping around), so that consecutive small
	// fetches take turns instead of always starting with the same tenant.
	FairAfter string
}

// RotateTenants orders tenants (sorted ascending) for a fair round that
// starts after the tenant after: those above it first, then the rest.
func RotateTenants(tenants []string, after string) []string {
	if after == "" || len(tenants) < 2 {
		return tenants
	}
	i := 0
	for i < len(tenants) && tenants[i] <= after {
		i++
	}
	return append(append(make([]string, 0, len(tenants)), tenants[i:]...), tenants[:i]...)
}

// Lease is a job handed to a worker.
type Lease struct {
	JobID        uuid.UUID
	TenantID     string
	PartitionKey string
	Kind         string
	Payload      []byte
	Priority     int
	THLC         string // empty for a job that exists only in the legacy table
	Attempt      int    // 1 on the first run
	MaxAttempts  int
	RunAt        time.Time
	CreatedAt    time.Time
	Owner        string
	Token        uuid.UUID
	ExpiresAt    time.Time
	Chain        *ChainEntry // set when DequeueParams.WithChain and the job has a chain entry
}

// ChainEntry is a job's log entry as stored, with its predecessor's link,
// for VerifyOnDequeue.
type ChainEntry struct {
	Seq             int64 // seq_bigint
	Pos             int64 // chain_pos
	THLC            string
	PayloadHash     chain.Hash
	PrevLink        chain.Hash // as stored; zero for NULL
	PrevLinkNull    bool
	Link            chain.Hash
	Payload         []byte     // the stored payload, re-canonicalised by the verifier
	PredecessorLink chain.Hash // link of the entry at Pos-1; zero when Pos is 0
	PredecessorTHLC string     // t_hlc of the entry at Pos-1; empty when Pos is 0
	HasPredecessor  bool       // an entry at Pos-1 exists
}

// Transition is a fenced change of a leased job's state.
type Transition struct {
	JobID  uuid.UUID
	Token  uuid.UUID
	Status Status    // succeeded, failed, cancelled, pending or scheduled (retry or snooze)
	RunAt  time.Time // for pending/scheduled: when it may run again
	Error  string    // recorded in last_error when not empty
	// UndoAttempt gives the attempt back (a snooze is not a failure).
	UndoAttempt bool
	Now         time.Time
}

// JobInfo is a job as stored, merged from both sides (the HLC side wins
// where both hold state, since both are written together).
type JobInfo struct {
	JobID          uuid.UUID
	TenantID       string
	PartitionKey   string
	Kind           string
	Payload        []byte
	PayloadHash    chain.Hash
	Priority       int
	Status         Status
	Attempts       int
	MaxAttempts    int
	RunAt          time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	LeaseOwner     string
	LeaseToken     uuid.UUID
	LeaseExpiresAt time.Time
	LastError      string
	InLegacy       bool        // a legacy row exists
	InHLC          bool        // HLC state and a chain entry exist
	Chain          *ChainEntry // the chain entry, when InHLC
}
