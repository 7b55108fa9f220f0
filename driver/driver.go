package driver

import (
	"context"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/migrations"
)

// Driver is the whole contract of a storage backend. A backend implements
// every method; one that cannot do something returns an error wrapping
// ErrNotSupported from that method (and reports it in Capabilities), and
// the conformance suite (driver/drivertest) checks both answers agree.
//
// A Driver does SQL and nothing else: the Queue validates input, decides
// modes, retries and backoff, and supplies the chain arithmetic through
// EnqueueBatch.Append, so two backends cannot drift apart in meaning.
//
// Every state change (TransitionJob(s), ExtendLease, CancelJob,
// RescueExpired, MarkChainViolation, RetryJob) applies to every
// representation the job has, legacy row and HLC state alike, in one
// transaction, whatever the current mode: that is what lets the read side
// switch, or roll back, without running a finished job again or stranding
// a pending one.
type Driver interface {
	Jobs
	Reconciler
	Lister
	Operations
	Insights
	Tokens
	Sessions
	Leadership

	// Capabilities reports what this backend can do beyond the common core.
	Capabilities() Capabilities

	// Listen delivers a value (coalesced) whenever a transaction that
	// enqueued jobs commits, from any process, until ctx ends. A backend
	// without cross-process notification returns ErrNotSupported.
	Listen(ctx context.Context) (<-chan struct{}, error)

	// AuditStore is the audit package's view of the same database.
	AuditStore() AuditStore
	// HLCState is where this backend persists each node's HLC upper bound.
	HLCState() hlc.StateStore

	// Migrate applies the backend's pending migrations.
	Migrate(ctx context.Context) ([]migrations.Applied, error)
	// MigrationStatus lists every migration and whether it is applied.
	MigrationStatus(ctx context.Context) ([]migrations.State, error)

	// Close releases the backend's resources.
	Close() error
}

// Capabilities are the optional parts of the contract. A false field
// means the matching methods return ErrNotSupported.
type Capabilities struct {
	// Listen: cross-process wakeups (PostgreSQL LISTEN/NOTIFY).
	Listen bool
	// Leadership: TryLead and Resign elect one holder of a duty. Without
	// it every node does the duty, which ordo's duties tolerate
	// (periodic jobs have deterministic ids; rescues are fenced).
	Leadership bool
}

// Jobs is the queue's side of the contract: writes, leases and
// transitions, and reads of one job.
type Jobs interface {
	// Enqueue writes a batch. Jobs whose id already exists (on either side)
	// are not written again: their result has Deduplicated set and carries
	// the stored t_hlc and link. Results are in the order of b.Jobs.
	Enqueue(ctx context.Context, b *EnqueueBatch) ([]EnqueueResult, error)

	// EnqueueTx writes a batch as Enqueue does, inside the caller's own
	// transaction tx (a pgx.Tx on PostgreSQL, a *sql.Tx on SQLite): the
	// jobs exist if and only if the caller commits. A tx of another type
	// is an error naming the type wanted.
	EnqueueTx(ctx context.Context, tx any, b *EnqueueBatch) ([]EnqueueResult, error)

	// Dequeue leases up to p.Limit available jobs (status pending or
	// scheduled with run_at <= p.Now) in the requested order, skipping jobs
	// locked by concurrent dequeuers, sets them running with p.Owner,
	// p.Token and p.LeaseUntil, and increments their attempts.
	Dequeue(ctx context.Context, p DequeueParams) ([]Lease, error)

	// TransitionJob moves a leased job to t.Status, fenced by the lease
	// token: if no representation of the job (in t.TenantID, when set)
	// holds t.Token, it returns ErrLeaseLost and changes nothing.
	TransitionJob(ctx context.Context, t Transition) error

	// TransitionJobs applies each transition as TransitionJob would, all
	// in one transaction, and returns per transition nil or ErrLeaseLost.
	// When it returns an error, none was applied. The queue coalesces
	// concurrent completions into one call (group commit).
	TransitionJobs(ctx context.Context, ts []Transition) ([]error, error)

	// TransitionJobTx applies t as TransitionJob does, inside the caller's
	// transaction tx (the same kind EnqueueTx takes): the job's new state
	// commits, or rolls back, with the caller's own writes. Fenced by the
	// lease as TransitionJob is (ErrLeaseLost).
	TransitionJobTx(ctx context.Context, tx any, t Transition) error

	// ExtendLease moves a held lease's expiry to p.Until, fenced like
	// TransitionJob.
	ExtendLease(ctx context.Context, p ExtendParams) error

	// CancelJob cancels a job that has not finished (whoever holds it; a
	// holder's later TransitionJob gets ErrLeaseLost). It returns
	// ErrJobNotFound for an unknown id (or a job of another tenant than
	// p.TenantID, when set) and ErrJobFinished for a job already
	// succeeded, failed or cancelled.
	CancelJob(ctx context.Context, p CancelParams) error

	// RescueExpired returns running jobs whose lease expired before p.Now
	// to pending (or to failed, when their last attempt expired), at most
	// p.Limit of them.
	RescueExpired(ctx context.Context, p RescueParams) (RescueResult, error)

	// MarkChainViolation withholds a leased job whose chain entry did not
	// verify: status chain_violation, reason in last_error. Fenced.
	MarkChainViolation(ctx context.Context, p ViolationParams) error

	// GetJob returns one job, merged from both sides, if it belongs to
	// r.TenantID (any tenant when r.TenantID is ""): the tenant is part of
	// the query, so another tenant's job is ErrJobNotFound, as is an id
	// that exists on neither side.
	GetJob(ctx context.Context, r JobRef) (JobInfo, error)
}

// Reconciler moves jobs between the legacy table and the HLC side when
// the read side changes (the guide's backfill and rollback).
type Reconciler interface {
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
}

// Lister lists and counts jobs for the HTTP API, `ordo jobs list`, the
// dashboard and the jobs-by-state metric.
type Lister interface {
	// ListJobs returns one page of a tenant's jobs and the cursor of the
	// next page ("" after the last page). A page holds first the jobs on
	// the HLC side, in t_hlc order (ties, which only forged entries could
	// make, by job id), then the jobs that exist only in the legacy table,
	// in (created_at, id) order; a job on both sides is listed once, in
	// t_hlc order, with its state merged as GetJob merges it. Jobs
	// enqueued while a client pages may be missed if their t_hlc sorts
	// before the cursor (another partition, another node's clock).
	ListJobs(ctx context.Context, p ListParams) (jobs []JobInfo, next string, err error)

	// CountByStatus counts jobs by tenant and status: each job once,
	// whichever sides hold it.
	CountByStatus(ctx context.Context, p CountParams) ([]StatusCount, error)

	KindLister // the kinds of a tenant's recent jobs (search.go)
}

// Operations is the operator state the dashboard reads and changes
// (migration 006_operations): paused queues, retries of finished jobs,
// the last verification of each tenant, each node's reported clock, and a
// record of operator actions. None of it touches the chain:
// scheduler_log records enqueues, and stays append-only.
type Operations interface {
	// PauseQueue pauses p.Queue: Dequeue skips its jobs on both read sides
	// until ResumeQueue. Pausing a paused queue keeps its first pause.
	PauseQueue(ctx context.Context, p PauseParams) error
	// ResumeQueue resumes q and reports whether it was paused.
	ResumeQueue(ctx context.Context, q QueueKey) (bool, error)
	// PausedQueues lists the paused queues of tenant ("" for all), sorted
	// by tenant and kind.
	PausedQueues(ctx context.Context, tenant string) ([]PausedQueue, error)

	// RetryJob puts a failed or cancelled job back in the queue, on every
	// side that holds it, in one transaction: status pending, run_at now,
	// attempts 0 (a retried job gets its max_attempts again), lease
	// cleared; last_error is kept until the next attempt overwrites it.
	// ErrJobNotFound for an unknown id, ErrNotRetryable for a job in
	// another status (a chain_violation job is withheld on purpose and is
	// never retried).
	RetryJob(ctx context.Context, jobID uuid.UUID, now time.Time) error

	// DeleteJob deletes one finished job's state (succeeded, failed or
	// cancelled) on both sides at once, as retention would: its log entry
	// stays, so the job then reads as StatusPruned. ErrJobNotFound for a
	// job with no state, ErrJobNotFinished for one in another status
	// (a chain_violation job is evidence and stays).
	DeleteJob(ctx context.Context, jobID uuid.UUID) error

	// PruneFinished deletes the state of finished jobs, retention's part:
	// on each side, the rows p selects, oldest first, at most p.Limit per
	// side, in one short transaction that waits for no lock (a row being
	// changed is skipped and pruned on a later call). A row whose job was
	// retried meanwhile is not finished any more and stays. The jobs' log
	// entries stay too: the log is the audit record, and it is also what
	// keeps a pruned job's id from being enqueued again (Enqueue
	// deduplicates against the log) and what GetJob reads a pruned job
	// from (StatusPruned).
	PruneFinished(ctx context.Context, p PruneParams) (PruneResult, error)

	// TenantActivity summarises each tenant's recent work (tenant "" for
	// every tenant with jobs): enqueues and completions at or after since,
	// and the oldest job still pending.
	TenantActivity(ctx context.Context, tenant string, since time.Time) ([]TenantActivity, error)
	// Tenants lists the tenants with jobs on either side, sorted.
	Tenants(ctx context.Context) ([]string, error)

	// SaveVerification keeps v as its tenant's latest verification.
	SaveVerification(ctx context.Context, v VerificationRecord) error
	// Verifications returns the latest verification of tenant ("" for
	// every tenant), sorted by tenant.
	Verifications(ctx context.Context, tenant string) ([]VerificationRecord, error)

	// ReportNode records a node's clock as it reads now.
	ReportNode(ctx context.Context, n NodeReport) error
	// Nodes lists every node that reported or has a persisted HLC bound
	// (scheduler.hlc_state), sorted by node id.
	Nodes(ctx context.Context) ([]NodeStatus, error)

	// RecordAction appends an operator action to the record.
	RecordAction(ctx context.Context, a OperatorAction) error
	// Actions lists recorded actions, newest first.
	Actions(ctx context.Context, f ActionFilter) ([]OperatorAction, error)
}

// Tokens keeps the HTTP API's bearer tokens (scheduler.api_tokens).
type Tokens interface {
	// CreateToken stores t. An id or hash already stored is an error.
	CreateToken(ctx context.Context, t APIToken) error
	// TokenByHash returns the token with hash h, revoked or not;
	// ErrTokenNotFound if there is none.
	TokenByHash(ctx context.Context, h [32]byte) (APIToken, error)
	// ListTokens returns every token, revoked ones included, oldest first.
	ListTokens(ctx context.Context) ([]APIToken, error)
	// RevokeToken revokes the token with id at now, and deletes its
	// dashboard sessions; ErrTokenNotFound if there is none. Revoking a
	// revoked token keeps its first revocation.
	RevokeToken(ctx context.Context, id string, now time.Time) error
}

// Sessions keeps the web dashboard's sessions
// (scheduler.dashboard_sessions), so that any node serves any session.
// A session is found by the SHA-256 of its id, which is all that is
// stored of it.
type Sessions interface {
	// CreateSession stores s. First it deletes the oldest sessions of
	// s.TokenHash beyond l.MaxPerToken - 1, and, when l.MaxTotal sessions
	// are stored, every session expired by l's cutoffs; if l.MaxTotal are
	// still stored it stores nothing and returns ErrTooManySessions.
	CreateSession(ctx context.Context, s Session, l SessionLimits) error
	// Session returns the session whose id hashes to h, expired or not;
	// ErrSessionNotFound if there is none.
	Session(ctx context.Context, h [32]byte) (Session, error)
	// TouchSession sets the last use of the session h to now (nothing if
	// it is gone).
	TouchSession(ctx context.Context, h [32]byte, now time.Time) error
	// DeleteSession deletes the session h (nothing if it is gone).
	DeleteSession(ctx context.Context, h [32]byte) error
}

// Leadership elects one holder of a named duty at a time with an
// expiring lease (Capabilities.Leadership).
type Leadership interface {
	// TryLead makes p.Holder the leader of p.Name until p.Until, if nobody
	// else holds an unexpired lease (a holder renewing its own lease
	// succeeds), and reports whether p.Holder leads now.
	TryLead(ctx context.Context, p LeadParams) (bool, error)
	// Resign gives up holder's lease of name, if it holds it.
	Resign(ctx context.Context, name, holder string) error
}

// AuditStore is what the audit package needs: streaming chain reads,
// Merkle tree hashes, checkpoints and snapshots.
type AuditStore interface {
	VerificationProgress // the periodic verification's progress (verifyprogress.go)
	StartOrder           // when jobs first started, for verify --order
	LogArchive           // archived ranges of chains, and dropping them (archive.go)
	// Chains lists the chains that have log entries or a chain_heads row,
	// of one tenant ("" for all tenants), sorted by tenant then partition.
	Chains(ctx context.Context, tenantID string) ([]chain.Key, error)

	// Scan calls fn for every log entry of chain p.Key whose chain_pos is
	// in [p.From, p.To) (p.To < 0: no upper bound), in chain_pos order,
	// streaming: the entry and the slices it holds are only valid during
	// the call. Without p.WithPayload, Kind, IdempotencyKey and Payload are
	// left empty.
	Scan(ctx context.Context, p ScanParams, fn func(*LogEntry) error) error

	// Head returns the chain_heads row of k; ok is false when there is none.
	// The row is a cache: it names the chain's last entry, or on a backend
	// that refreshes it lazily (PostgreSQL) an earlier one, never a later.
	Head(ctx context.Context, k chain.Key) (h HeadRow, ok bool, err error)

	// Duplicates returns the job ids that occur more than once in chain k,
	// with their counts, sorted by job id. With candidates, only those ids
	// are considered (an index lookup); with nil, the whole chain (an
	// aggregate over the chain's entries, done by the database).
	Duplicates(ctx context.Context, k chain.Key, candidates []uuid.UUID) ([]Duplicate, error)

	// FindJob returns the log entries (at most a few; normally one) whose
	// job_id is r.JobID, with their chains, of r.TenantID only (any tenant
	// when it is ""): the tenant is part of the query.
	FindJob(ctx context.Context, r JobRef) ([]Located, error)

	// PosOf returns the chain_pos of the entry of chain k with t_hlc tHLC
	// (ok false when there is none).
	PosOf(ctx context.Context, k chain.Key, tHLC string) (pos int64, ok bool, err error)

	// ExportEntries returns the log entries of chain p.Key after
	// p.AfterTHLC ("" for all), only those node p.Node appended when it is
	// set, in chain order, with the jobs as enqueued: what an offline
	// bundle carries (ordo jobs export).
	ExportEntries(ctx context.Context, p ExportParams) ([]ExportedEntry, error)
	// LastTHLC returns the greatest t_hlc in the log of a tenant, over all
	// its chains ("" when it has none): where an import starts stamping.
	LastTHLC(ctx context.Context, tenantID string) (string, error)

	// InsertSnapshot stores a batch snapshot.
	InsertSnapshot(ctx context.Context, s *Snapshot) error
	// Snapshots lists snapshots matching f, oldest first (snapshot_hlc).
	Snapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error)

	// TreeSize returns how many leaves of chain k's Merkle tree are stored.
	TreeSize(ctx context.Context, k chain.Key) (int64, error)
	// ReadHashes returns the stored tree hashes of chain k at the given
	// tlog stored-hash indexes, in order (a tlog.HashReader per chain).
	ReadHashes(ctx context.Context, k chain.Key, indexes []int64) ([]tlog.Hash, error)
	// AppendHashes stores p.Hashes at the stored-hash indexes
	// tlog.StoredHashCount(p.OldSize) onwards and moves the tree size from
	// p.OldSize to p.NewSize, in one transaction; it fails with
	// ErrTreeMoved when the stored size is not p.OldSize (another writer
	// got there first).
	AppendHashes(ctx context.Context, p AppendHashesParams) error
	// TreesBehind lists the chains with more entries than their stored
	// tree size, with both numbers. Entries are counted from the log:
	// chain_heads may name an earlier entry (see Head).
	TreesBehind(ctx context.Context) ([]TreeProgress, error)

	// InsertCheckpoint stores a signed checkpoint; a second checkpoint of
	// the same chain and size is ignored.
	InsertCheckpoint(ctx context.Context, c *Checkpoint) error
	// Checkpoints returns chain k's checkpoints, newest (largest) first,
	// at most limit of them (limit <= 0: all).
	Checkpoints(ctx context.Context, k chain.Key, limit int) ([]Checkpoint, error)
}

// JobRef names a job within a tenant; TenantID "" is any tenant (admin
// and internal callers).
type JobRef struct {
	TenantID string
	JobID    uuid.UUID
}

// ExtendParams moves a lease's expiry.
type ExtendParams struct {
	JobID, Token uuid.UUID
	// TenantID is the lease's tenant, as Transition.TenantID: another
	// tenant's job is not held (ErrLeaseLost); empty for any tenant.
	TenantID   string
	Until, Now time.Time
}

// CancelParams cancels an unfinished job.
type CancelParams struct {
	JobID uuid.UUID
	// TenantID is the job's tenant: a job of another tenant is
	// ErrJobNotFound, as GetJob's JobRef has it; empty for any tenant.
	TenantID string
	Reason   string
	Now      time.Time
}

// RescueParams bounds one pass of the expired-lease rescuer.
type RescueParams struct {
	Now   time.Time
	Limit int
}

// RescueResult counts what a rescue pass did.
type RescueResult struct {
	Rescued int // back to pending
	Failed  int // their last attempt expired
}

// ViolationParams withholds a leased job whose entry did not verify.
type ViolationParams struct {
	JobID, Token uuid.UUID
	// TenantID is the lease's tenant, as Transition.TenantID: another
	// tenant's job is not held (ErrLeaseLost); empty for any tenant.
	TenantID string
	Reason   string
	Now      time.Time
}

// PauseParams pauses a queue.
type PauseParams struct {
	Queue QueueKey
	By    string
	Now   time.Time
}

// LeadParams asks for (or renews) the lease of a named duty.
type LeadParams struct {
	Name, Holder string
	Until, Now   time.Time
}

// ScanParams selects a range of one chain's entries.
type ScanParams struct {
	Key         chain.Key
	From, To    int64
	WithPayload bool
}

// ExportParams selects the entries of one chain for an offline bundle.
type ExportParams struct {
	Key       chain.Key
	AfterTHLC string // only entries whose t_hlc sorts after it; "" for all
	Node      string // only entries this node appended; "" for all
	// FromPos and ToPos bound chain_pos to [FromPos, ToPos); ToPos 0 is
	// no upper bound.
	FromPos, ToPos int64
}

// ExportedEntry is a log entry with its job as enqueued.
type ExportedEntry struct {
	LoggedJob
	JobID          uuid.UUID
	IdempotencyKey string // "" for none
	Node           string // node_id: the node that appended it
	// Source is where an entry merged from an offline bundle came from
	// (Planned unset); nil for an entry appended here.
	Source *ImportSource
}

// AppendHashesParams extends a chain's stored Merkle tree.
type AppendHashesParams struct {
	Key              chain.Key
	OldSize, NewSize int64
	Hashes           []tlog.Hash
}
