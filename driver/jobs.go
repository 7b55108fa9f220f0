package driver

import (
	"crypto/sha256"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// Errors a Driver returns; the Queue passes them through to applications.
var (
	ErrLeaseLost   = errors.New("queue: lease lost: the job's lease expired and was given to another worker, or the job was cancelled")
	ErrJobNotFound = errors.New("queue: job not found")
	ErrJobFinished = errors.New("queue: job already finished")
	// ErrIdempotencyConflict: an idempotency key given by the caller
	// names an existing job whose payload differs; nothing was written.
	ErrIdempotencyConflict = errors.New("queue: idempotency key already used for another payload")
	ErrClosed              = errors.New("queue: closed")
	// ErrUnavailable: the database cannot be reached or is shutting
	// down or starting (a refused or dropped connection, PostgreSQL's
	// SQLSTATE class 08 and 57P01..57P03). Worth retrying, unlike a
	// closed handle.
	ErrUnavailable = errors.New("queue: database unavailable")
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

	// StatusPruned is what a read reports for a job that finished and
	// whose state retention deleted (PruneFinished): only its log entry
	// is left, so its final status, attempts and last error are gone. No
	// job is ever stored in it, and lists do not show pruned jobs.
	StatusPruned Status = "pruned"
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
	// Metadata is EncodeMetadata's encoding, nil for none: stored with
	// the job's state on every side, outside the payload and the chain.
	Metadata []byte
	// Source is set for a job merged from an offline node's bundle: its
	// entry is stamped with Source.Planned (or ImportTimestamp of the
	// head it actually follows), not by the clock.
	Source *ImportSource
	// Status is pending, or scheduled when RunAt is after the enqueue time.
	Status Status

	// Backfill only: the legacy row's state, carried over to the HLC side.
	CreatedAt      time.Time
	Attempts       int
	LeaseOwner     string
	LeaseToken     uuid.UUID
	LeaseExpiresAt time.Time
	LastError      string
	AttemptErrors  []byte // the legacy row's attempt_errors as stored (JSON), nil for none
}

// Head is a chain's head as read, under lock, from chain_heads.
type Head struct {
	Exists bool
	Link   chain.Hash
	THLC   hlc.Timestamp
	Count  int64 // entries in the chain; the next entry's chain_pos
}

// AppendEntry is one log row to insert, computed by EnqueueBatch.Append.
type AppendEntry struct {
	Job      *Prepared
	THLC     hlc.Timestamp
	THLCText string
	Pos      int64      // chain_pos
	PrevLink chain.Hash // zero for a genesis entry (stored as NULL)
	Link     chain.Hash
}

// EnqueueBatch is what the Queue hands a Driver to write.
type EnqueueBatch struct {
	Jobs   []*Prepared
	Legacy bool // write the legacy table
	HLC    bool // append to the chain and create HLC state
	Node   string
	Now    time.Time // updated_at of new rows; created_at comes from each Prepared.CreatedAt

	// stamp issues the timestamp of the entry following prev (zero: genesis).
	stamp func(prev hlc.Timestamp) (hlc.Timestamp, error)
}

// NewEnqueueBatch returns a batch whose entries are stamped by clock: the
// first entry of a chain with clock.Now, each later one with
// clock.Receive of its predecessor.
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
func (b *EnqueueBatch) Append(head Head, jobs []*Prepared) ([]AppendEntry, Head, error) {
	entries := make([]AppendEntry, len(jobs))
	var buf [hlc.MaxTextLen]byte
	for i, j := range jobs {
		var t hlc.Timestamp
		if j.Source != nil {
			// Planned after the head the importer saw; a head that moved
			// since (another writer) is followed all the same.
			t = ImportTimestamp(head.THLC, j.Source.Planned)
		} else {
			var err error
			if t, err = b.stamp(head.THLC); err != nil {
				return nil, head, err
			}
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
		entries[i] = AppendEntry{Job: j, THLC: t, THLCText: text, Pos: head.Count, PrevLink: prev, Link: link}
		head = Head{Exists: true, Link: link, THLC: t, Count: head.Count + 1}
	}
	return entries, head, nil
}

// GroupByChain splits jobs by chain, keeping their relative order, and
// returns the chains in a stable order (sorted by key) so that concurrent
// batches lock heads in the same order and cannot deadlock.
func GroupByChain(jobs []*Prepared) ([]chain.Key, map[chain.Key][]*Prepared) {
	groups := map[chain.Key][]*Prepared{}
	var keys []chain.Key
	for _, j := range jobs {
		k := chain.Key{TenantID: j.TenantID, PartitionKey: j.PartitionKey}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], j)
	}
	slices.SortFunc(keys, chain.Key.Compare)
	return keys, groups
}

// EnqueueResult reports what became of one job.
type EnqueueResult struct {
	JobID        uuid.UUID
	THLC         string     // canonical t_hlc; empty when written to the legacy table only
	Link         chain.Hash // zero when written to the legacy table only
	Deduplicated bool       // the job already existed; nothing was written
	// PayloadHash, for a deduplicated job that has a chain entry, is the
	// payload hash of the job that exists (zero otherwise): how the queue
	// tells a repeated enqueue from an idempotency key reused for another
	// payload.
	PayloadHash chain.Hash
}

// DequeueParams asks a Driver for leases.
type DequeueParams struct {
	HLCOrder bool // t_hlc order from the HLC side; else legacy order
	Limit    int
	Owner    string
	// Token is the dequeue's secret: each lease it grants is fenced by
	// its own token, LeaseToken(Token, job id), which a backend computes
	// as it writes the lease (so both sides of a job get the same one).
	// A worker holding one job's token cannot complete another job of the
	// batch, and cannot derive another's token from its own.
	Token            uuid.UUID
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

// PickRule is the ordering policy of a dequeue: which available jobs a
// batch takes, and in what order. It is decided here, once, by
// DequeueParams.Rule; each backend builds one pick query per rule from
// one description of each side (legacy table, HLC state), so both
// backends apply the same algorithm to the same parameters.
type PickRule int

const (
	// PickPlain takes the side's available jobs in read order (legacy:
	// priority DESC, created_at, id; HLC: t_hlc), of one tenant or of all.
	PickPlain PickRule = iota
	// PickStrict takes only the head of each (tenant, partition): the
	// earliest job in chain order not yet finished, when it is available.
	PickStrict
	// PickFair lists the tenants with jobs (a skip scan, one probe per
	// tenant), turns them (tenant_id order, starting after FairAfter,
	// wrapping around), takes each tenant's earliest Limit available
	// jobs, and interleaves them round by round, (n-th job, turn): every
	// tenant's first job, then every tenant's second, and so on.
	PickFair
)

// Rule is the ordering policy these parameters ask for: strict partitions
// win over fair sharing, and fair sharing needs more than one tenant to
// share between (it is ignored with TenantID).
func (p DequeueParams) Rule() PickRule {
	switch {
	case p.StrictPartitions:
		return PickStrict
	case p.FairTenants && p.TenantID == "":
		return PickFair
	}
	return PickPlain
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
	Token        uuid.UUID // this job's: LeaseToken(DequeueParams.Token, JobID)
	ExpiresAt    time.Time
	Chain        *ChainEntry // set when DequeueParams.WithChain and the job has a chain entry
	// Metadata is what the job was enqueued with (queue.Job.Metadata),
	// nil for none: a trace context, for one.
	Metadata map[string]string
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
	JobID uuid.UUID
	// TenantID is the job's tenant, as its lease names it (Lease.TenantID):
	// the change is made only to that tenant's job, so on a distributed
	// PostgreSQL it goes to one node (docs/scaling.md). A job of another
	// tenant is not held: ErrLeaseLost. Empty: the job of that id in any
	// tenant, which a distributed database has to look for on every node.
	TenantID string
	Token    uuid.UUID
	Status   Status    // succeeded, failed, cancelled, pending or scheduled (retry or snooze)
	RunAt    time.Time // for pending/scheduled: when it may run again
	Error    string    // recorded in last_error when not empty
	// UndoAttempt gives the attempt back (a snooze is not a failure).
	UndoAttempt bool
	Now         time.Time
}

// JobInfo is a job as stored, merged from both sides (the HLC side wins
// where both hold state, since both are written together).
type JobInfo struct {
	JobID        uuid.UUID
	TenantID     string
	PartitionKey string
	Kind         string
	Payload      []byte
	PayloadHash  chain.Hash
	Priority     int
	Status       Status
	Attempts     int
	MaxAttempts  int
	RunAt        time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
	LeaseOwner   string
	// LeaseToken is the running lease's token, or for a job that ended
	// under a lease (completed, failed, snoozed, cancelled by its holder),
	// the token of that last lease.
	LeaseToken     uuid.UUID
	LeaseExpiresAt time.Time
	LastError      string
	// AttemptErrors are the errors of the job's last failed attempts,
	// oldest first, at most MaxAttemptErrors.
	AttemptErrors []AttemptError
	Metadata      map[string]string // as enqueued; nil for none
	InLegacy      bool              // a legacy row exists
	InHLC         bool              // HLC state and a chain entry exist
	Chain         *ChainEntry       // the chain entry, when the job has one (always when InHLC or Pruned)
	// Pruned: the job's state was deleted by retention; Status is
	// StatusPruned and what is known comes from its log entry.
	Pruned bool
}

// LoggedJob is a job as its log entry holds it: as enqueued (the log keeps
// every job whole), with its chain entry.
type LoggedJob struct {
	TenantID, PartitionKey, Kind string
	Payload                      []byte
	Priority, MaxAttempts        int
	CreatedAt, RunAt             time.Time
	Entry                        ChainEntry
}

// CompleteFromLog completes info, as read from the job's state rows
// (InLegacy, InHLC), with its log entry l (nil when it has none): the job
// as enqueued and its chain entry. Every backend's GetJob ends with it, so
// they answer alike: a job with neither state nor log entry is
// ErrJobNotFound, and one with a log entry but no state on either side was
// pruned by retention (StatusPruned).
func (info *JobInfo) CompleteFromLog(l *LoggedJob) error {
	if l == nil {
		if !info.InLegacy && !info.InHLC {
			return ErrJobNotFound
		}
		return nil
	}
	e := l.Entry
	info.Chain = &e
	info.TenantID, info.PartitionKey, info.Kind, info.Priority = l.TenantID, l.PartitionKey, l.Kind, l.Priority
	info.Payload, info.PayloadHash, info.CreatedAt = l.Payload, e.PayloadHash, l.CreatedAt
	if !info.InLegacy && !info.InHLC {
		info.Pruned, info.Status = true, StatusPruned
		info.MaxAttempts, info.RunAt = l.MaxAttempts, l.RunAt
	}
	return nil
}

// PruneParams say which finished jobs' state PruneFinished deletes: those
// whose status is succeeded, cancelled or failed and whose last change
// (updated_at) is before that status's cutoff. A zero cutoff keeps that
// status's jobs.
type PruneParams struct {
	SucceededBefore time.Time
	CancelledBefore time.Time
	FailedBefore    time.Time
	// Limit bounds the rows deleted on each side in one call, so that one
	// call is one short transaction.
	Limit int
}

// PruneResult counts the rows PruneFinished deleted, per side.
type PruneResult struct {
	HLC    int // job_state rows
	Legacy int // scheduler.jobs rows
}

// LeaseToken is the token of job's lease in the dequeue whose secret is
// batch: the first 16 bytes of SHA-256(batch || job), the bytes of each
// UUID. PostgreSQL computes the same in SQL (sha256 of uuid_send), SQLite
// through a function ordo registers; both must match this one.
func LeaseToken(batch, job uuid.UUID) uuid.UUID {
	var b [32]byte
	copy(b[:16], batch[:])
	copy(b[16:], job[:])
	sum := sha256.Sum256(b[:])
	return uuid.UUID(sum[:16])
}

// SetStoredHashes sets e's payload hash, prev link and link from the
// bytes a backend stored. A malformed stored prev_link is kept as a
// non-zero hash, so the verifier reports it rather than reading the entry
// as a genesis entry.
func (e *ChainEntry) SetStoredHashes(hash, prev, link []byte) {
	e.PayloadHash, _ = chain.HashFromBytes(hash)
	e.Link, _ = chain.HashFromBytes(link)
	e.PrevLinkNull = prev == nil
	e.PrevLink = chain.Hash{}
	if prev != nil {
		var err error
		if e.PrevLink, err = chain.HashFromBytes(prev); err != nil {
			e.PrevLink = chain.Hash{0xff}
		}
	}
}
