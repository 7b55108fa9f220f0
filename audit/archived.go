package audit

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// IssueArchiveMismatch: the archive files, the database's record of an
// archived range (scheduler.chain_archives) and the entries the database
// still holds disagree: a different link at the same position, a record
// whose tree does not give its signed root, or dropped entries no
// archive given covers.
const IssueArchiveMismatch IssueType = "archive_mismatch"

// ArchivedPrefix is the beginning of a chain, entries 0..len(Links)-1, as
// archive files hold it, already verified by package archive against its
// own rules (every entry's hashes and link, the joins between archives,
// their signed checkpoints). The Verifier joins the database's entries to
// it, so a chain whose oldest entries were dropped still verifies from its
// genesis: the first retained entry must follow the archived one before
// it, the tree continues over the archived leaves to the roots of later
// checkpoints, and a retained entry must not repeat an archived job id.
type ArchivedPrefix struct {
	Links  []chain.Hash
	THLCs  []string
	JobIDs []uuid.UUID
	Source string // named in issues, e.g. the archive directories
	ids    map[uuid.UUID]int64
}

// Len returns how many entries the prefix holds.
func (p *ArchivedPrefix) Len() int64 { return int64(len(p.Links)) }

// posOf returns where the prefix holds job id, or -1.
func (p *ArchivedPrefix) posOf(id uuid.UUID) int64 {
	if p.ids == nil {
		p.ids = make(map[uuid.UUID]int64, len(p.JobIDs))
		for i, j := range p.JobIDs {
			if _, dup := p.ids[j]; !dup {
				p.ids[j] = int64(i)
			}
		}
	}
	if i, ok := p.ids[id]; ok {
		return i
	}
	return -1
}

// archiveStart is where the database's part of a chain begins when its
// oldest entries were dropped after archiving: dropped is the end of the
// last dropped range (0: nothing dropped), rec that range's record.
type archiveStart struct {
	dropped int64
	rec     *driver.ChainArchive
	prefix  *ArchivedPrefix // nil: only the database's record
}

// loadArchiveStart reads the chain's archive records and checks them
// against each other and against the archive files given, if any.
func (cv *chainVerifier) loadArchiveStart(ctx context.Context) (*archiveStart, error) {
	recs, err := cv.v.Store.ChainArchives(ctx, cv.key)
	if err != nil {
		return nil, err
	}
	st := &archiveStart{prefix: cv.v.Archived[cv.key]}
	for i := range recs {
		if recs[i].DroppedAt.IsZero() {
			break
		}
		st.dropped, st.rec = recs[i].EndPos, &recs[i]
	}
	p := st.prefix
	var tree treeBuilder // over p's leaves, to each record's end in turn (records ascend)
	for i := range recs {
		r := &recs[i]
		if len(r.TreeEdge) != bits.OnesCount64(uint64(r.EndPos)) || restoreTree(r.EndPos, r.TreeEdge).root() != r.Root {
			cv.issueAt(IssueArchiveMismatch, r.EndPos-1, fmt.Sprintf("the database's record of the archive of chain_pos %d to %d: its tree edge does not give its root %s",
				r.StartPos, r.EndPos-1, b64(r.Root)))
		}
		if b, _, err := OpenCheckpoint(r.Checkpoint, cv.v.Key); err != nil || b.Size != r.EndPos || b.Root != r.Root || !OriginOf(b.Origin, cv.key) {
			why := "it is not this chain's checkpoint of that size and root"
			if err != nil {
				why = err.Error()
			}
			cv.issueAt(IssueArchiveMismatch, r.EndPos-1, fmt.Sprintf("the signed checkpoint recorded with the archive of chain_pos %d to %d: %s", r.StartPos, r.EndPos-1, why))
		}
		if p == nil || p.Len() < r.EndPos {
			continue
		}
		if p.Links[r.EndPos-1] != r.LastLink || p.THLCs[r.EndPos-1] != r.LastTHLC {
			cv.issueAt(IssueArchiveMismatch, r.EndPos-1, fmt.Sprintf("the archives given (%s) hold another entry at chain_pos %d than the database's record of its archive", p.Source, r.EndPos-1))
		}
		for _, l := range p.Links[tree.size():r.EndPos] {
			tree.add(LeafHash(l))
		}
		if root := tree.root(); root != r.Root {
			cv.issueAt(IssueArchiveMismatch, r.EndPos-1, fmt.Sprintf("the archives given (%s) hash to root %s at size %d, the database's record of its archive says %s",
				p.Source, b64(root), r.EndPos, b64(r.Root)))
		}
	}
	if p != nil && p.Len() < st.dropped {
		cv.issueAt(IssueArchiveMismatch, p.Len(), fmt.Sprintf("the database dropped chain_pos 0 to %d, but the archives given (%s) end at chain_pos %d: give the missing archives",
			st.dropped-1, p.Source, p.Len()-1))
		st.prefix = nil
	}
	return st, nil
}

// seedFromArchive starts the stream after the dropped entries, joined to
// the last one: from the archive files when given (the tree is then
// rebuilt from the genesis, and checkpoints of any size are held to it),
// else from the database's record (the tree continues from the recorded
// edge; checkpoints of archived sizes only are not compared).
func (cv *chainVerifier) seedFromArchive(st *archiveStart) {
	d := st.dropped
	cv.from, cv.archived = d, d
	cv.res.ArchivedEntries = d
	cv.lastPos = d - 1
	if p := st.prefix; p != nil {
		cv.lastLink, cv.lastTHLC = p.Links[d-1], []byte(p.THLCs[d-1])
		cv.prefix = p
		if cv.tree != nil {
			for _, l := range p.Links[:d] {
				cv.tree.add(LeafHash(l))
				cv.matchCheckpoints()
			}
		}
		if cv.headPos >= 0 && cv.headPos < d {
			cv.headSeen, cv.headLink, cv.headTHLC = true, p.Links[cv.headPos], p.THLCs[cv.headPos]
		}
		return
	}
	r := st.rec
	cv.lastLink, cv.lastTHLC, cv.archiveEdge = r.LastLink, []byte(r.LastTHLC), r.TreeEdge
	if len(r.TreeEdge) != bits.OnesCount64(uint64(d)) {
		cv.tree, cv.cps, cv.archiveEdge = nil, nil, nil // reported by loadArchiveStart: no tree to continue
	}
	if cv.tree != nil {
		cv.tree = restoreTree(d, r.TreeEdge)
		kept := cv.cps[:0]
		for _, c := range cv.cps {
			if c.size >= d {
				kept = append(kept, c)
			}
		}
		cv.cps = kept
		cv.matchCheckpoints()
	}
	switch {
	case cv.headPos == d-1:
		cv.headSeen, cv.headLink, cv.headTHLC = true, r.LastLink, r.LastTHLC
	case cv.headPos >= 0 && cv.headPos < d-1:
		cv.headUnchecked = true // a trailing head inside the dropped range: nothing here to hold it to
	}
}

// matchCheckpoints records the root of every checkpoint whose size the
// tree has reached.
func (cv *chainVerifier) matchCheckpoints() {
	for cv.cpNext < len(cv.cps) && cv.cps[cv.cpNext].size == cv.tree.size() {
		root := cv.tree.root()
		cv.cps[cv.cpNext].got = &root
		cv.cpNext++
	}
}

// droppedStart returns the progress a periodic round starts from when
// entries up to a dropped archive's end are no longer in the database
// and p has not verified that far: the archive was verified against them
// before they were dropped, and its record joins the next entry to them.
func droppedStart(ctx context.Context, s driver.AuditStore, p *driver.ChainVerification) (*driver.ChainVerification, error) {
	recs, err := s.ChainArchives(ctx, p.Key)
	if err != nil {
		return nil, err
	}
	var last *driver.ChainArchive
	for i := range recs {
		if recs[i].DroppedAt.IsZero() {
			break
		}
		last = &recs[i]
	}
	if last == nil || p.VerifiedSize >= last.EndPos || len(last.TreeEdge) != bits.OnesCount64(uint64(last.EndPos)) {
		return nil, nil
	}
	return &driver.ChainVerification{Key: p.Key, VerifiedSize: last.EndPos, VerifiedLink: last.LastLink, VerifiedTHLC: last.LastTHLC,
		TreeEdge: append([]tlog.Hash(nil), last.TreeEdge...), CheckpointSize: min(p.CheckpointSize, last.EndPos)}, nil
}
