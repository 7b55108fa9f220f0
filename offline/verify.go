package offline

import (
	"fmt"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// Check verifies every chain of a bundle and returns, per chain (by
// index in b.Chains), the first entry that fails, nil for a chain that
// passes. An entry passes when its identifiers are valid, its payload
// hashes to its payload_hash, its job id is the one its tenant,
// partition, kind, key and payload make, its link is the hash of its own
// fields and prev_link; and, where the bundle also holds the entry
// before it in the chain (chain_pos one less), its prev_link is that
// entry's link and its t_hlc sorts after that entry's. A genesis entry
// (chain_pos 0) has no prev_link, and only it.
func Check(name string, b *Bundle) []*EntryError {
	out := make([]*EntryError, len(b.Chains))
	for ci, c := range b.Chains {
		out[ci] = checkChain(name, b, c)
	}
	return out
}

func checkChain(name string, b *Bundle, c Chain) *EntryError {
	var prev *Entry
	for i := range c.Entries {
		e := &c.Entries[i]
		bad := func(format string, args ...any) *EntryError {
			return &EntryError{Bundle: name, Partition: c.Partition, Pos: e.Pos, THLC: e.THLC, JobID: e.JobID, Reason: fmt.Sprintf(format, args...)}
		}
		if err := chain.ValidateTenantID(b.Tenant); err != nil {
			return bad("%v", err)
		}
		if err := chain.ValidatePartitionKey(c.Partition); err != nil {
			return bad("%v", err)
		}
		t, err := hlc.Parse(e.THLC)
		if err != nil {
			return bad("%v", err)
		}
		if t.Node != e.Node {
			return bad("its t_hlc names node %s, but node_id says %s", t.Node, e.Node)
		}
		if b.Node != "" && e.Node != b.Node {
			return bad("the bundle holds node %s's entries, this one is node %s's", b.Node, e.Node)
		}
		if prev != nil && e.Pos <= prev.Pos {
			return bad("chain_pos %d after %d: the entries are not in chain order", e.Pos, prev.Pos)
		}
		hash, err := chain.PayloadHash(e.Payload)
		if err != nil {
			return bad("payload: %v", err)
		}
		if stated, err := chain.ParseHash(e.PayloadHash); err != nil || stated != hash {
			return bad("payload hash mismatch: the payload hashes to %s, the entry says %s", hash, e.PayloadHash)
		}
		id, err := chain.JobID(b.Tenant, c.Partition, e.Kind, e.IdempotencyKey, hash)
		if err != nil {
			return bad("%v", err)
		}
		if id != e.JobID {
			return bad("job id mismatch: its tenant, partition, kind, key and payload make %s", id)
		}
		var prevLink chain.Hash
		switch {
		case e.Pos == 0 && e.PrevLink != nil:
			return bad("the genesis entry (chain_pos 0) has a prev_link")
		case e.Pos > 0 && e.PrevLink == nil:
			return bad("prev_link is null, but only the genesis entry (chain_pos 0) has none")
		case e.PrevLink != nil:
			if prevLink, err = chain.ParseHash(*e.PrevLink); err != nil || prevLink == (chain.Hash{}) {
				return bad("prev_link %q is not a 32-byte hash", *e.PrevLink)
			}
		}
		link, err := chain.Link(prevLink, e.JobID, e.THLC, hash)
		if err != nil {
			return bad("%v", err)
		}
		if stated, err := chain.ParseHash(e.Link); err != nil || stated != link {
			return bad("link mismatch: its fields and prev_link hash to %s, the entry says %s", link, e.Link)
		}
		if prev != nil && e.Pos == prev.Pos+1 {
			if pl, err := chain.ParseHash(prev.Link); err != nil || pl != prevLink {
				return bad("broken predecessor: prev_link %s is not entry %d's link %s", *e.PrevLink, prev.Pos, prev.Link)
			}
			if pt, _ := hlc.Parse(prev.THLC); !t.After(pt) {
				return bad("t_hlc does not increase: entry %d has %s", prev.Pos, prev.THLC)
			}
		}
		prev = e
	}
	return nil
}
