package offline

import (
	"context"
	"fmt"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// VerifySources checks the entries of a tenant's chains that were merged
// from offline bundles against the offline chains they came from: each
// one's source link must be the hash of its job id and payload hash with
// its source t_hlc and source prev_link, as the offline node computed it.
// It returns how many merged entries it checked; the first mismatch is
// an *EntryError.
func VerifySources(ctx context.Context, store driver.AuditStore, tenant string) (int, error) {
	keys, err := store.Chains(ctx, tenant)
	if err != nil {
		return 0, err
	}
	checked := 0
	for _, k := range keys {
		rows, err := store.ExportEntries(ctx, driver.ExportParams{Key: k})
		if err != nil {
			return checked, err
		}
		for _, r := range rows {
			src := r.Source
			if src == nil {
				continue
			}
			var prev chain.Hash
			if !src.PrevNull {
				prev = src.PrevLink
			}
			link, err := chain.Link(prev, r.JobID, src.THLC, r.Entry.PayloadHash)
			if err != nil || link != src.Link {
				return checked, &EntryError{Partition: k.PartitionKey, Pos: r.Entry.Pos, THLC: r.Entry.THLC, JobID: r.JobID,
					Reason: fmt.Sprintf("its source entry (node %s, t_hlc %s) does not hash to its source link %s", src.Node, src.THLC, src.Link)}
			}
			checked++
		}
	}
	return checked, nil
}
