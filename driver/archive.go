package driver

import (
	"context"
	"errors"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

// ErrArchiveRange is returned by RecordArchive for a range that does not
// begin where the chain's latest archive ends (0 for the first), or is
// empty, and by DropArchived for an archive that is unknown, already
// dropped, or preceded by one that is not: a chain's retained entries are
// always one contiguous range ending at its head.
var ErrArchiveRange = errors.New("audit: archive range")

// ErrArchiveMismatch is returned by DropArchived when the entries the
// database holds for the range are not the ones archived (their count or
// the last entry's link differ): nothing is dropped.
var ErrArchiveMismatch = errors.New("audit: the database's entries are not the archived ones")

// ErrArchiveUnfinished is returned by DropArchived when a job of the range
// has not finished (pending, scheduled or running on either side): its
// entry is what a worker checks before running it.
var ErrArchiveUnfinished = errors.New("audit: an archived entry's job has not finished")

// ChainArchive is a scheduler.chain_archives row: the range [StartPos,
// EndPos) of chain Key written out as archive files (package archive),
// and what the database keeps of it once its entries are dropped: enough
// to join the retained entries to it and to re-derive the tree.
type ChainArchive struct {
	Key           chain.Key
	StartPos      int64
	EndPos        int64      // exclusive; the tree size of Checkpoint
	FirstPrevLink chain.Hash // zero for a range starting at the genesis
	LastLink      chain.Hash // the link of the entry at EndPos-1
	LastTHLC      string     // its t_hlc
	// TreeEdge is the right edge of the Merkle tree of the chain's first
	// EndPos leaves: the hashes of its complete subtrees, largest first.
	TreeEdge   []tlog.Hash
	Root       tlog.Hash // that tree's root, as Checkpoint signs it
	Checkpoint []byte    // the signed note of size EndPos
	ArchivedAt time.Time
	DroppedAt  time.Time // zero while the entries are still in scheduler_log
	// Dropped counts what DropArchived removed: entries, and job states.
	DroppedEntries, DroppedJobs int64
}

// DropParams names the archive whose entries DropArchived removes.
type DropParams struct {
	Key      chain.Key
	StartPos int64
	Now      time.Time
}

// DropResult says what DropArchived removed, and how.
type DropResult struct {
	Entries int64 // scheduler_log rows
	Jobs    int64 // job_state rows of their (finished) jobs
	// PartitionsDropped counts the scheduler_log partitions detached and
	// dropped whole (PostgreSQL), rather than deleted from row by row.
	PartitionsDropped int
}

// LogPartitioner is implemented by a backend whose scheduler_log is
// partitioned by t_hlc (PostgreSQL, migration 021), so that dropping an
// archived range can drop whole partitions; a backend without partitions
// (SQLite) does not implement it and needs nothing done. The service's
// leader calls it every so often (Ordo:Database:LogPartitionPeriod).
type LogPartitioner interface {
	// EnsureLogPartitions creates the partitions, each of one period,
	// that cover the time from the end of the last partition up to now
	// plus a few periods ahead. A range is left to the default partition
	// when that partition holds rows in it, or when it begins too soon to
	// be attached safely (before now plus a minute).
	EnsureLogPartitions(ctx context.Context, now time.Time, period time.Duration) (LogPartitions, error)
}

// LogPartitions says what EnsureLogPartitions did.
type LogPartitions struct {
	Created []string // names of the partitions created
	// LeftToDefault are the ranges, [start, end) of physical time, that
	// no partition was created for: the default partition takes them.
	LeftToDefault [][2]time.Time
}

// LogArchive records archived ranges of chains and drops their entries.
type LogArchive interface {
	// RecordArchive stores a as chain a.Key's next archive: a.StartPos
	// must be the EndPos of its latest one (0 for the first) and a.EndPos
	// after it, or ErrArchiveRange.
	RecordArchive(ctx context.Context, a *ChainArchive) error
	// ChainArchives returns chain k's archives, by StartPos.
	ChainArchives(ctx context.Context, k chain.Key) ([]ChainArchive, error)
	// DropArchived removes from scheduler_log the entries of chain
	// p.Key's archive starting at p.StartPos, and the job_state rows of
	// their jobs, and marks the archive dropped, in one transaction. It
	// checks first, in that transaction: the archive exists and every
	// earlier one is dropped (else ErrArchiveRange); the log holds the
	// range whole, its last entry's link the archived one (else
	// ErrArchiveMismatch); no job of the range is unfinished on either
	// side (else ErrArchiveUnfinished, naming it).
	DropArchived(ctx context.Context, p DropParams) (DropResult, error)
}
