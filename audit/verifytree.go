package audit

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// treeCheckChunk is how many entries the stored-tree check reads at a
// time: a chunk's entries, then its stored hashes, so memory stays
// bounded and SQLite's one connection is never needed twice at once.
const treeCheckChunk = 4096

// checkStoredTree recomputes every hash of the chain's stored Merkle tree
// (chain_tree_hashes, up to its stored size) from the entries and compares
// them. The tree is a cache the checkpointer extends and proofs are cut
// from: a changed hash that no signed root covers yet would still make
// inclusion proofs fail, so the verifier checks it too. The first wrong
// hash is reported, as an IssueTreeMismatch.
func (cv *chainVerifier) checkStoredTree(ctx context.Context) error {
	size, err := cv.v.Store.TreeSize(ctx, cv.key)
	if err != nil || size == 0 {
		return err
	}
	if size > cv.lastPos+1 || cv.firstGap >= 0 && cv.firstGap < size {
		cv.issue(IssueTreeMismatch, nil, "", fmt.Sprintf("the stored tree has %d leaves but the chain's entries 0..%d are not all there", size, size-1))
		return nil
	}
	var w treeWalker
	from := int64(0)
	if cv.archived > 0 && cv.archived <= size {
		// The dropped leaves: from the archive files when given (every
		// stored hash over them is compared), else the walk starts from
		// the recorded edge, whose stored copies are compared.
		if p := cv.prefix; p != nil {
			for ; from < cv.archived; from += treeCheckChunk {
				var computed []storedHash
				for _, l := range p.Links[from:min(cv.archived, from+treeCheckChunk)] {
					computed = w.add(LeafHash(l), computed)
				}
				if bad, err := cv.compareStored(ctx, computed); bad || err != nil {
					return err
				}
			}
		} else {
			// The edge of the tree of the dropped leaves, largest subtree
			// first: one per set bit of their count.
			edge := cv.archiveEdge
			var computed []storedHash
			start := int64(0)
			for l := 62; l >= 0 && len(computed) < len(edge); l-- {
				if cv.archived>>l&1 == 1 {
					computed = append(computed, storedHash{tlog.StoredHashIndex(l, start>>l), edge[len(computed)]})
					w.stack, w.level = append(w.stack, edge[len(computed)-1]), append(w.level, l)
					start += 1 << l
				}
			}
			w.n, from = cv.archived, cv.archived
			if bad, err := cv.compareStored(ctx, computed); bad || err != nil {
				return err
			}
		}
	}
	for ; from < size; from += treeCheckChunk {
		to := min(size, from+treeCheckChunk)
		var computed []storedHash
		err := cv.v.Store.Scan(ctx, driver.ScanParams{Key: cv.key, From: from, To: to}, func(e *driver.LogEntry) error {
			link, err := chain.HashFromBytes(e.Link)
			if err != nil {
				return errBadEntry
			}
			computed = w.add(LeafHash(link), computed)
			return nil
		})
		if err == errBadEntry {
			return nil // the entry checks have reported it
		}
		if err != nil {
			return err
		}
		if bad, err := cv.compareStored(ctx, computed); bad || err != nil {
			return err
		}
	}
	return nil
}

// compareStored compares computed hashes with the stored ones and reports
// the first that differs; bad says one did.
func (cv *chainVerifier) compareStored(ctx context.Context, computed []storedHash) (bad bool, err error) {
	indexes := make([]int64, len(computed))
	for i, c := range computed {
		indexes[i] = c.index
	}
	stored, err := cv.v.Store.ReadHashes(ctx, cv.key, indexes)
	if err != nil {
		return false, err
	}
	for i, c := range computed {
		if stored[i] != c.hash {
			level, n := tlog.SplitStoredHashIndex(c.index)
			cv.issue(IssueTreeMismatch, nil, "", fmt.Sprintf("the stored tree hash at level %d, index %d (leaves %d..%d) is not the hash of those entries",
				level, n, n<<level, (n+1)<<level-1))
			return true, nil
		}
	}
	return false, nil
}

var errBadEntry = fmt.Errorf("audit: an entry's link is not a hash")

// storedHash is one hash of a tlog tree at its stored-hash index.
type storedHash struct {
	index int64
	hash  tlog.Hash
}

// treeWalker computes, leaf by leaf, every hash a tlog tree stores: the
// leaf's, and each interior node's as soon as its subtree is complete.
type treeWalker struct {
	n     int64       // leaves added
	stack []tlog.Hash // complete subtrees along the right edge, one per level present
	level []int
}

func (w *treeWalker) add(leaf tlog.Hash, out []storedHash) []storedHash {
	out = append(out, storedHash{tlog.StoredHashIndex(0, w.n), leaf})
	w.stack, w.level = append(w.stack, leaf), append(w.level, 0)
	for k := len(w.stack); k >= 2 && w.level[k-1] == w.level[k-2]; k = len(w.stack) {
		h := tlog.NodeHash(w.stack[k-2], w.stack[k-1])
		l := w.level[k-1] + 1
		w.stack, w.level = append(w.stack[:k-2], h), append(w.level[:k-2], l)
		out = append(out, storedHash{tlog.StoredHashIndex(l, w.n>>l), h})
	}
	w.n++
	return out
}
