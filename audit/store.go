package audit

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/queue"
)

// Store is what the audit package needs from a backend. store/postgres and
// store/sqlite provide one through their AuditStore method; both run the
// same suite (audit/audittest), tamper tests included.
type Store interface {
	// Chains lists the chains that have log entries or a chain_heads row,
	// of one tenant ("" for all tenants), sorted by tenant then partition.
	Chains(ctx context.Context, tenantID string) ([]queue.ChainKey, error)

	// Scan calls fn for every log entry of chain k whose chain_pos is in
	// [from, to) (to < 0: no upper bound), in chain_pos order, streaming:
	// the Entry and the slices it holds are only valid during the call.
	// Without withPayload, Kind, IdempotencyKey and Payload are left empty.
	Scan(ctx context.Context, k queue.ChainKey, from, to int64, withPayload bool, fn func(*Entry) error) error

	// Head returns the chain_heads row of k; ok is false when there is none.
	Head(ctx context.Context, k queue.ChainKey) (h HeadRow, ok bool, err error)

	// Duplicates returns the job ids that occur more than once in chain k,
	// with their counts, sorted by job id. With candidates, only those ids
	// are considered (an index lookup); with nil, the whole chain (an
	// aggregate over the chain's entries, done by the database).
	Duplicates(ctx context.Context, k queue.ChainKey, candidates []uuid.UUID) ([]Duplicate, error)

	// FindJob returns the log entries (at most a few; normally one) whose
	// job_id is id, with their chains.
	FindJob(ctx context.Context, id uuid.UUID) ([]Located, error)

	// PosOf returns the chain_pos of the entry of chain k with t_hlc tHLC
	// (ok false when there is none).
	PosOf(ctx context.Context, k queue.ChainKey, tHLC string) (pos int64, ok bool, err error)

	// InsertSnapshot stores a batch snapshot.
	InsertSnapshot(ctx context.Context, s *Snapshot) error
	// Snapshots lists snapshots matching f, oldest first (snapshot_hlc).
	Snapshots(ctx context.Context, f SnapshotFilter) ([]Snapshot, error)

	// TreeSize returns how many leaves of chain k's Merkle tree are stored.
	TreeSize(ctx context.Context, k queue.ChainKey) (int64, error)
	// ReadHashes returns the stored tree hashes of chain k at the given
	// tlog stored-hash indexes, in order (a tlog.HashReader per chain).
	ReadHashes(ctx context.Context, k queue.ChainKey, indexes []int64) ([]tlog.Hash, error)
	// AppendHashes stores hashes at the stored-hash indexes
	// tlog.StoredHashCount(oldSize) onwards and moves the tree size from
	// oldSize to newSize, in one transaction; it fails with ErrTreeMoved
	// when the stored size is not oldSize (another writer got there first).
	AppendHashes(ctx context.Context, k queue.ChainKey, oldSize, newSize int64, hashes []tlog.Hash) error
	// TreesBehind lists the chains whose chain_heads entry_count is
	// greater than their stored tree size, with both numbers.
	TreesBehind(ctx context.Context) ([]TreeProgress, error)

	// InsertCheckpoint stores a signed checkpoint; a second checkpoint of
	// the same chain and size is ignored.
	InsertCheckpoint(ctx context.Context, c *Checkpoint) error
	// Checkpoints returns chain k's checkpoints, newest (largest) first,
	// at most limit of them (limit <= 0: all).
	Checkpoints(ctx context.Context, k queue.ChainKey, limit int) ([]Checkpoint, error)
}

// ErrTreeMoved is returned by Store.AppendHashes when the stored tree size
// is not the one the caller extended.
var ErrTreeMoved = errors.New("audit: the chain's stored tree size changed meanwhile")

// ErrNotFound is returned when a job, snapshot or checkpoint asked for does
// not exist.
var ErrNotFound = errors.New("audit: not found")

// Entry is one scheduler_log row as the verifier reads it. Hashes are kept
// as stored (a malformed length is something to report, not to repair);
// PrevLink is nil for NULL.
type Entry struct {
	Seq            int64 // seq_bigint
	Pos            int64 // chain_pos
	THLC           []byte
	JobID          uuid.UUID
	PayloadHash    []byte
	PrevLink       []byte
	Link           []byte
	Kind           []byte
	IdempotencyKey []byte // nil for NULL
	HasKey         bool
	Payload        []byte // as stored (jsonb text on PostgreSQL)
}

// HeadRow is a chain_heads row.
type HeadRow struct {
	LastLink   []byte
	LastTHLC   string
	EntryCount int64
}

// Duplicate is a job id found more than once in one chain.
type Duplicate struct {
	JobID uuid.UUID
	Count int64
}

// Located is a log entry with its chain.
type Located struct {
	Key         queue.ChainKey
	Pos         int64
	Seq         int64
	THLC        string
	JobID       uuid.UUID
	PayloadHash chain.Hash
	PrevLink    chain.Hash // zero for NULL
	Link        chain.Hash
}

// TreeProgress is how far the checkpointer has hashed one chain.
type TreeProgress struct {
	Key      queue.ChainKey
	Entries  int64 // chain_heads.entry_count
	TreeSize int64 // leaves stored
}

// Snapshot is a scheduler.batch_snapshot row: a signed record of the range
// [FromPos, ToPos] of one chain.
type Snapshot struct {
	BatchID     uuid.UUID
	Key         queue.ChainKey
	SnapshotHLC string
	FromPos     int64
	ToPos       int64
	FromLink    chain.Hash
	ToLink      chain.Hash
	EntryCount  int64
	MerkleRoot  chain.Hash
	Envelope    []byte // the DSSE envelope, JSON
	KeyID       string
	CreatedAt   time.Time
}

// SnapshotFilter selects snapshots. Zero fields match everything.
type SnapshotFilter struct {
	BatchID      uuid.UUID
	TenantID     string
	PartitionKey *string
	Limit        int
}

// Checkpoint is a signed statement of the size and Merkle root of one
// chain's tree.
type Checkpoint struct {
	Key       queue.ChainKey
	Size      int64
	Root      tlog.Hash
	Note      []byte // the signed note, C2SP tlog-checkpoint body
	KeyName   string
	CreatedAt time.Time
}
