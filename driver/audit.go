package driver

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

// ErrTreeMoved is returned by AuditStore.AppendHashes when the stored tree size
// is not the one the caller extended.
var ErrTreeMoved = errors.New("audit: the chain's stored tree size changed meanwhile")

// ErrRecordNotFound is returned when a job, snapshot or checkpoint asked for does
// not exist.
var ErrRecordNotFound = errors.New("audit: not found")

// LogEntry is one scheduler_log row as the verifier reads it. Hashes are kept
// as stored (a malformed length is something to report, not to repair);
// PrevLink is nil for NULL.
type LogEntry struct {
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
	Key         chain.Key
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
	Key      chain.Key
	Entries  int64 // chain_heads.entry_count
	TreeSize int64 // leaves stored
}

// Snapshot is a scheduler.batch_snapshot row: a signed record of the range
// [FromPos, ToPos] of one chain.
type Snapshot struct {
	BatchID     uuid.UUID
	Key         chain.Key
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
	Key       chain.Key
	Size      int64
	Root      tlog.Hash
	Note      []byte // the signed note, C2SP tlog-checkpoint body
	KeyName   string
	CreatedAt time.Time
}

// Cosignature is a witness's cosignature (C2SP tlog-cosignature) of the
// checkpoint of chain Key at tree size Size, verified with the witness's
// key before it was stored.
type Cosignature struct {
	Key           chain.Key
	Size          int64
	WitnessKeyID  string // <name>+<hash> of the witness's verifier key
	SignatureLine string // "— <name> <base64>", as appended to the note
	CreatedAt     time.Time
}

// CosignatureStore stores witness cosignatures; both of ordo's backends'
// audit stores implement it (a type assertion on AuditStore).
type CosignatureStore interface {
	// InsertCosignature stores a cosignature; a second one of the same
	// chain, size and witness key replaces nothing (it is ignored).
	InsertCosignature(ctx context.Context, c *Cosignature) error
	// Cosignatures returns the cosignatures of chain k's checkpoint of
	// tree size size, ordered by witness key id.
	Cosignatures(ctx context.Context, k chain.Key, size int64) ([]Cosignature, error)
	// WitnessedSize returns the largest tree size of chain k that the
	// witness with key id witnessKeyID cosigned (0: none).
	WitnessedSize(ctx context.Context, k chain.Key, witnessKeyID string) (int64, error)
}
