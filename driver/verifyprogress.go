package driver

import (
	"context"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

// ChainVerification is how far the periodic, incremental verification
// has checked one chain (scheduler.chain_verification, migration 015),
// and what its latest round found.
type ChainVerification struct {
	Key chain.Key
	// VerifiedSize entries, chain_pos 0 .. VerifiedSize-1, have been
	// checked and found valid; the next round starts at chain_pos
	// VerifiedSize.
	VerifiedSize int64
	// VerifiedLink and VerifiedTHLC are the link and t_hlc of the entry at
	// chain_pos VerifiedSize-1 (zero and "" when VerifiedSize is 0): the
	// next entry must link to them.
	VerifiedLink chain.Hash
	VerifiedTHLC string
	// TreeEdge are the hashes of the complete subtrees along the right
	// edge of the Merkle tree of the first VerifiedSize leaves, largest
	// first (one per set bit of VerifiedSize), from which the tree is
	// continued without reading the verified entries again.
	TreeEdge []tlog.Hash
	// CheckpointSize is the size of the largest signed checkpoint whose
	// root was found to match the verified entries (0: none yet).
	CheckpointSize int64

	// The latest round: when it ran, its verdict, how many entries it
	// read, how many issues it found, and the first of them as
	// audit.Issue JSON (an array).
	LastRunAt      time.Time
	LastValid      bool
	LastEntries    int64
	LastIssueCount int64
	LastIssues     []byte
}

// VerificationProgress keeps the periodic verification's progress per
// chain. Only the verifying leader writes it; a row that is missing or
// reset only makes the next round read that chain from its genesis.
type VerificationProgress interface {
	// ChainVerifications returns the progress of every chain of tenant
	// ("" for every tenant) that has a progress row or a chain_heads row,
	// sorted by tenant then partition; a chain never verified has
	// VerifiedSize 0 and a zero LastRunAt.
	ChainVerifications(ctx context.Context, tenant string) ([]ChainVerification, error)
	// SaveChainVerification stores v as its chain's progress, replacing
	// the row there was.
	SaveChainVerification(ctx context.Context, v ChainVerification) error
}

// StartedJob is one job that has been started, with its place in HLC
// order (its chain entry's t_hlc) and the time of its first start.
type StartedJob struct {
	PartitionKey string
	Kind         string
	THLC         string
	JobID        uuid.UUID
	StartedAt    time.Time
}

// StartOrder reads when jobs first started, for `ordo verify --order`.
type StartOrder interface {
	// StartedJobs calls fn for every job of tenant that has HLC state and
	// a recorded first start (job_state.started_at), in t_hlc order,
	// streaming: the value is only valid during the call. Jobs whose
	// state retention has deleted are not there.
	StartedJobs(ctx context.Context, tenant string, fn func(*StartedJob) error) error
}
