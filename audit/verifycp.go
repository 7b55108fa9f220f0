package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/ordo-sched/ordo/driver"
	"golang.org/x/mod/sumdb/tlog"
)

// loadCheckpoints gathers the signed checkpoints to hold the chain to: the
// latest one stored (unless NoStoredCheckpoints) and those the auditor
// supplied for this chain.
func (cv *chainVerifier) loadCheckpoints(ctx context.Context) error {
	ours := func(o string) bool { return OriginOf(o, cv.key) }
	if !cv.v.NoStoredCheckpoints {
		stored, err := cv.v.Store.Checkpoints(ctx, cv.key, 1)
		if err != nil {
			return err
		}
		for _, c := range stored {
			b, signed, err := OpenCheckpoint(c.Note, cv.v.Key)
			if err != nil {
				cv.issue(IssueCheckpointMismatch, nil, "", fmt.Sprintf("the stored checkpoint of size %d does not verify: %v", c.Size, err))
				continue
			}
			if !ours(b.Origin) {
				cv.issue(IssueCheckpointMismatch, nil, "", fmt.Sprintf("the stored checkpoint of size %d names %q, not this chain", c.Size, b.Origin))
				continue
			}
			// The columns are what lists and the API show; only the
			// note is signed. They must say the same.
			if b.Size != c.Size || b.Root != c.Root {
				cv.issue(IssueCheckpointMismatch, nil, "", fmt.Sprintf("the stored checkpoint's tree_size %d and root_hash %s are not its signed note's %d and %s",
					c.Size, c.Root, b.Size, b.Root))
			}
			cv.cps = append(cv.cps, checkpointCheck{size: b.Size, root: b.Root, origin: "stored", signed: signed})
		}
	}
	for i, msg := range cv.v.Checkpoints {
		if cv.v.Key == nil {
			return fmt.Errorf("audit: checking the auditor's checkpoints needs the public key")
		}
		b, _, err := OpenCheckpoint(msg, cv.v.Key)
		if err != nil {
			return fmt.Errorf("audit: auditor checkpoint %d: %w", i+1, err)
		}
		if ours(b.Origin) {
			cv.cps = append(cv.cps, checkpointCheck{size: b.Size, root: b.Root, origin: fmt.Sprintf("auditor's #%d", i+1), signed: true})
		}
	}
	kept := cv.cps[:0]
	for _, c := range cv.cps {
		if c.size > 0 {
			kept = append(kept, c)
		}
	}
	cv.cps = kept
	sort.SliceStable(cv.cps, func(i, j int) bool { return cv.cps[i].size < cv.cps[j].size })
	return nil
}

// checkCheckpoints compares every gathered checkpoint with what the stream
// computed: a checkpoint larger than the chain reveals truncation, a root
// that differs a rewrite, which locate then pins to an entry.
func (cv *chainVerifier) checkCheckpoints(ctx context.Context) error {
	for _, c := range cv.cps {
		cv.res.CheckpointsChecked++
		unsigned := ""
		if !c.signed {
			unsigned = " (signature not checked: no public key given)"
		}
		end := int64(0) // one past the last chain_pos present
		if cv.n > 0 || cv.archived > 0 {
			end = cv.lastPos + 1
		}
		if c.size > end {
			cv.issueAt(IssueTruncation, end, fmt.Sprintf("the %s checkpoint%s covers %d entries but the chain ends at chain_pos %d: entries from chain_pos %d on were removed",
				c.origin, unsigned, c.size, end-1, end))
			continue
		}
		if c.got == nil { // a gap inside the covered range
			cv.issueAt(IssueCheckpointMismatch, cv.firstGap, fmt.Sprintf("the entry at chain_pos %d, covered by the %s checkpoint%s of size %d, is missing",
				cv.firstGap, c.origin, unsigned, c.size))
			continue
		}
		if *c.got == c.root {
			continue
		}
		desc := fmt.Sprintf("the entries at chain_pos 0..%d hash to root %s, but the %s checkpoint%s signed %s: history was rewritten",
			c.size-1, b64(*c.got), c.origin, unsigned, b64(c.root))
		loc, err := cv.locate(ctx, c)
		if err != nil {
			return err
		}
		if loc == nil {
			cv.issueAt(IssueCheckpointMismatch, c.size-1, desc)
			continue
		}
		cv.issue(IssueCheckpointMismatch, loc, loc.thlcText, desc+fmt.Sprintf("; the first changed entry is at chain_pos %d", loc.pos))
	}
	return nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

func (cv *chainVerifier) issueAt(typ IssueType, pos int64, desc string) {
	cv.issue(typ, nil, "", desc)
	if n := len(cv.res.Issues); n > 0 && cv.res.Issues[n-1].Description == desc {
		cv.res.Issues[n-1].Seq = pos
	}
}

// locate finds the first entry whose leaf differs from the leaf hashed
// into the chain's stored tree, when that stored tree still reproduces the
// checkpoint's signed root (so its leaves are the signed ones). It reads
// in chunks so that it never nests queries (SQLite has one connection).
func (cv *chainVerifier) locate(ctx context.Context, c checkpointCheck) (*rec, error) {
	stored, err := cv.v.Store.TreeSize(ctx, cv.key)
	if err != nil || stored < c.size {
		return nil, err
	}
	th, err := tlog.TreeHash(c.size, treeHashReader(ctx, cv.v.Store, cv.key))
	if err != nil || th != c.root {
		return nil, nil // the stored tree was changed too, or is incomplete: no leaf to trust
	}
	const chunk = 4096
	for from := cv.archived; from < c.size; from += chunk {
		end := min(c.size, from+chunk)
		idx := make([]int64, 0, end-from)
		for i := from; i < end; i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		leaves, err := cv.v.Store.ReadHashes(ctx, cv.key, idx)
		if err != nil {
			return nil, err
		}
		var found *rec
		next := from
		err = cv.v.Store.Scan(ctx, driver.ScanParams{Key: cv.key, From: from, To: end, WithPayload: false}, func(e *driver.LogEntry) error {
			if found != nil || e.Pos < from || e.Pos >= end {
				return nil
			}
			if e.Pos != next { // a deleted entry is the first change
				found = &rec{pos: next, seq: 0}
				return nil
			}
			next++
			if tlog.RecordHash(e.Link) != leaves[e.Pos-from] {
				found = &rec{pos: e.Pos, seq: e.Seq, jobID: e.JobID, thlcText: string(e.THLC)}
			}
			return nil
		})
		if err != nil || found != nil {
			return found, err
		}
		if next < end {
			return &rec{pos: next}, nil
		}
	}
	return nil, nil
}
