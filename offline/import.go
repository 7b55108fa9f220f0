package offline

import (
	"context"
	"fmt"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// ImportOptions refine Import.
type ImportOptions struct {
	// VerifyOnly checks the bundles and writes nothing.
	VerifyOnly bool
	// Force takes, of a chain with a bad entry, the entries before it
	// (reported in Report.Skipped) instead of refusing the bundle.
	Force bool
}

// Report says what Import did.
type Report struct {
	Bundles  int
	Entries  int           // entries in the bundles
	Imported int           // appended to the central chains
	Present  int           // dropped: the central log already had their job id
	Skipped  []*EntryError // with Force: the first bad entry of each chain cut short
	Results  []queue.EnqueueResult
}

// Import verifies bundles and merges their entries into q's chains
// (queue.Import). Any bad entry refuses the import, nothing written,
// naming the first one, unless opts.Force.
func Import(ctx context.Context, q *queue.Queue, bundles []*Decoded, opts ImportOptions) (*Report, error) {
	r := &Report{Bundles: len(bundles)}
	var jobs []queue.ImportedJob
	for _, d := range bundles {
		b := d.Bundle
		bad := Check(d.Name, b)
		for ci, c := range b.Chains {
			take := c.Entries
			r.Entries += len(c.Entries)
			if e := bad[ci]; e != nil {
				if !opts.Force {
					return r, e
				}
				r.Skipped = append(r.Skipped, e)
				take = cutAt(c.Entries, e.Pos)
			}
			for _, e := range take {
				jobs = append(jobs, importedJob(b.Tenant, c.Partition, e))
			}
		}
	}
	if opts.VerifyOnly {
		return r, nil
	}
	res, err := q.Import(ctx, jobs)
	r.Imported, r.Present, r.Results = len(res.Imported), res.Present, res.Imported
	if err != nil {
		return r, fmt.Errorf("offline: import: %w", err)
	}
	return r, nil
}

// cutAt is the entries before the one at chain_pos pos.
func cutAt(entries []Entry, pos int64) []Entry {
	for i, e := range entries {
		if e.Pos == pos {
			return entries[:i]
		}
	}
	return entries
}

func importedJob(tenant, partition string, e Entry) queue.ImportedJob {
	src := driver.ImportSource{Node: e.Node, THLC: e.THLC, PrevNull: e.PrevLink == nil}
	src.Link, _ = chain.ParseHash(e.Link) // checked by Check
	if e.PrevLink != nil {
		src.PrevLink, _ = chain.ParseHash(*e.PrevLink)
	}
	return queue.ImportedJob{
		Job: queue.Job{TenantID: tenant, PartitionKey: partition, Kind: e.Kind, Payload: e.Payload, Priority: e.Priority,
			RunAt: e.RunAt, IdempotencyKey: e.IdempotencyKey, MaxAttempts: e.MaxAttempts},
		JobID: e.JobID, CreatedAt: e.CreatedAt, Source: src,
	}
}
