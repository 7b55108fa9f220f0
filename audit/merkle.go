package audit

import (
	"fmt"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

// LeafHash is the RFC 6962 leaf hash of a log entry: the leaf data is the
// entry's 32-byte link, exactly as stored (no length prefix, no encoding),
// and the leaf hash is SHA-256(0x00 || link), as tlog.RecordHash computes.
// The link already commits to job_id, t_hlc, payload_hash and, through
// prev_link, to everything before the entry in its chain.
func LeafHash(link chain.Hash) tlog.Hash { return tlog.RecordHash(link[:]) }

// treeBuilder computes the RFC 6962 Merkle tree hash of a stream of leaves
// in O(log n) memory: it keeps the hashes of the complete subtrees along
// the tree's right edge (one per set bit of the leaf count).
type treeBuilder struct {
	n      int64
	hashes []tlog.Hash // complete subtrees, largest (leftmost) first
	levels []int       // their heights
}

// add appends one leaf hash.
func (b *treeBuilder) add(leaf tlog.Hash) {
	b.hashes = append(b.hashes, leaf)
	b.levels = append(b.levels, 0)
	b.n++
	for k := len(b.hashes); k >= 2 && b.levels[k-1] == b.levels[k-2]; k = len(b.hashes) {
		b.hashes[k-2] = tlog.NodeHash(b.hashes[k-2], b.hashes[k-1])
		b.levels[k-2]++
		b.hashes, b.levels = b.hashes[:k-1], b.levels[:k-1]
	}
}

// size returns the number of leaves added.
func (b *treeBuilder) size() int64 { return b.n }

// root returns the tree hash of the leaves added so far (RFC 6962 MTH),
// which equals tlog.TreeHash over the same leaves. The zero Hash for none.
func (b *treeBuilder) root() tlog.Hash {
	if len(b.hashes) == 0 {
		return tlog.Hash{}
	}
	h := b.hashes[len(b.hashes)-1]
	for i := len(b.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(b.hashes[i], h)
	}
	return h
}

// RangeRoot returns the RFC 6962 Merkle tree hash over the given links, as
// leaves in order: the root a batch snapshot signs.
func RangeRoot(links []chain.Hash) tlog.Hash {
	var b treeBuilder
	for _, l := range links {
		b.add(LeafHash(l))
	}
	return b.root()
}

// Tree is an RFC 6962 Merkle tree grown leaf by leaf in O(log n) memory:
// what an archive writer or reader continues from a recorded edge.
type Tree struct{ b *treeBuilder }

// ContinueTree returns the tree of size leaves whose right edge (the
// hashes of its complete subtrees, largest first, one per set bit of
// size) is edge; ContinueTree(0, nil) is the empty tree. It fails when
// edge does not have one hash per set bit of size.
func ContinueTree(size int64, edge []tlog.Hash) (*Tree, error) {
	if size < 0 || len(edge) != bits.OnesCount64(uint64(size)) {
		return nil, fmt.Errorf("audit: a tree of %d leaves has %d edge hashes, not %d", size, bits.OnesCount64(uint64(max(size, 0))), len(edge))
	}
	return &Tree{restoreTree(size, edge)}, nil
}

// AddLink adds the leaf of an entry with link l.
func (t *Tree) AddLink(l chain.Hash) { t.b.add(LeafHash(l)) }

// Size returns the number of leaves.
func (t *Tree) Size() int64 { return t.b.size() }

// Root returns the tree hash (zero for the empty tree).
func (t *Tree) Root() tlog.Hash { return t.b.root() }

// Edge returns the hashes of the complete subtrees along the right edge,
// largest first: what ContinueTree takes.
func (t *Tree) Edge() []tlog.Hash { return append([]tlog.Hash(nil), t.b.hashes...) }
