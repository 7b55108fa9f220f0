package archive

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/offline"
)

// VerifyAll verifies archives offline, chain by chain: each chain's
// archives must start at its genesis and join one another (see
// VerifyChain). It returns each chain's archived beginning, for the
// database's entries to be joined to (audit.Verifier.Archived).
func VerifyAll(archives []*Archive, key *audit.PublicKey) (map[chain.Key]*audit.ArchivedPrefix, error) {
	by := map[chain.Key][]*Archive{}
	for _, a := range archives {
		by[a.Manifest.Key()] = append(by[a.Manifest.Key()], a)
	}
	out := make(map[chain.Key]*audit.ArchivedPrefix, len(by))
	for k, as := range by {
		p, err := VerifyChain(as, key, nil)
		if err != nil {
			return nil, err
		}
		out[k] = p
	}
	return out, nil
}

// VerifyChain verifies the archives of one chain, in chain order whatever
// their order in archives. From the genesis (after nil), the first must
// start at chain_pos 0; else it must start where the recorded archive
// after ends, and join it. Each archive's entries must pass the entry
// checks of docs/chain-spec.md section 8, follow one another (chain_pos,
// prev_link, t_hlc) within and across archives, repeat no job id, and
// hash, with everything before them, to the root of the archive's
// checkpoint, whose signature key must verify and whose origin must name
// the chain. From the genesis, every tile file must also be the tile of
// that tree. The prefix returned holds the archives' entries only.
func VerifyChain(archives []*Archive, key *audit.PublicKey, after *driver.ChainArchive) (*audit.ArchivedPrefix, error) {
	if key == nil {
		return nil, fmt.Errorf("archive: verifying archives needs the log's public key")
	}
	if len(archives) == 0 {
		return nil, fmt.Errorf("archive: no archive to verify")
	}
	as := slices.Clone(archives)
	sort.Slice(as, func(i, j int) bool { return as[i].Manifest.StartPos < as[j].Manifest.StartPos })
	k := as[0].Manifest.Key()
	var dirs []string
	for _, a := range as {
		dirs = append(dirs, a.Dir)
	}
	prefix := &audit.ArchivedPrefix{Source: strings.Join(dirs, ", ")}
	var tree *audit.Tree
	var prevLink *chain.Hash
	var prevTHLC string
	next := int64(0)
	var leaves []tlog.Hash // from the genesis only: the tiles are checked against them
	if after != nil {
		var err error
		if tree, err = audit.ContinueTree(after.EndPos, after.TreeEdge); err != nil {
			return nil, fmt.Errorf("archive: the database's record of the archive ending at %d: %w", after.EndPos, err)
		}
		next, prevLink, prevTHLC = after.EndPos, &after.LastLink, after.LastTHLC
	} else {
		tree, _ = audit.ContinueTree(0, nil)
	}
	seen := map[uuid.UUID]int64{}
	for _, a := range as {
		m := &a.Manifest
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: %s: %s", ErrInvalid, a.Dir, fmt.Sprintf(format, args...))
		}
		if m.Key() != k {
			return nil, bad("it archives chain %s/%q, the others %s/%q: verify one chain's archives together", m.Tenant, m.Partition, k.TenantID, k.PartitionKey)
		}
		if m.StartPos != next {
			if m.StartPos > next {
				return nil, bad("it starts at chain_pos %d, but the archives before it end at %d: the archive of chain_pos %d to %d is missing", m.StartPos, next, next, m.StartPos-1)
			}
			return nil, bad("it starts at chain_pos %d, inside the archive before it, which ends at %d", m.StartPos, next)
		}
		pos := m.StartPos
		var last offline.Entry
		err := a.Entries(func(chunk []offline.Entry) error {
			b := &offline.Bundle{Format: offline.Format, Tenant: m.Tenant, Chains: []offline.Chain{{Partition: m.Partition, Entries: chunk}}}
			if e := offline.Check(a.Dir, b)[0]; e != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, e)
			}
			for _, e := range chunk {
				if e.Pos != pos {
					return bad("entry %d has chain_pos %d, not %d", pos-m.StartPos+1, e.Pos, pos)
				}
				pos++
				if at, dup := seen[e.JobID]; dup {
					return bad("chain_pos %d: job id %s occurs at chain_pos %d too", e.Pos, e.JobID, at)
				}
				seen[e.JobID] = e.Pos
			}
			first := chunk[0]
			if err := joins(first, prevLink); err != nil {
				return bad("%v", err)
			}
			if first.Pos == m.StartPos && ((m.FirstPrevLink == nil) != (first.PrevLink == nil) || m.FirstPrevLink != nil && *m.FirstPrevLink != *first.PrevLink) {
				return bad("the manifest's first_prev_link is not the first entry's prev_link")
			}
			if prevTHLC != "" {
				t, _ := hlc.Parse(first.THLC)
				if pt, err := hlc.Parse(prevTHLC); err != nil || !t.After(pt) {
					return bad("chain_pos %d: t_hlc %s is not after %s, the entry's before it", first.Pos, first.THLC, prevTHLC)
				}
			}
			for _, e := range chunk {
				l, _ := chain.ParseHash(e.Link)
				tree.AddLink(l)
				prefix.Links = append(prefix.Links, l)
				prefix.THLCs = append(prefix.THLCs, e.THLC)
				prefix.JobIDs = append(prefix.JobIDs, e.JobID)
				if after == nil {
					leaves = append(leaves, audit.LeafHash(l))
				}
			}
			last = chunk[len(chunk)-1]
			l := prefix.Links[len(prefix.Links)-1]
			prevLink, prevTHLC = &l, last.THLC
			return nil
		})
		if err != nil {
			return nil, err
		}
		if last.Link != m.LastLink || last.THLC != m.LastTHLC {
			return nil, bad("the manifest's last_link and last_t_hlc are not its last entry's")
		}
		root := tree.Root()
		if b64(root) != m.Root {
			return nil, bad("its entries, with the chain's before them, hash to root %s at size %d; the manifest says %s", b64(root), m.EndPos, m.Root)
		}
		body, signed, err := audit.OpenCheckpoint(a.Checkpoint, key)
		switch {
		case err != nil:
			return nil, bad("%s: %v", CheckpointFile, err)
		case !signed:
			return nil, bad("%s: not signed by %s", CheckpointFile, key.KeyID())
		case !audit.OriginOf(body.Origin, k):
			return nil, bad("%s: its origin %q is not chain %s/%q's", CheckpointFile, body.Origin, k.TenantID, k.PartitionKey)
		case body.Size != m.EndPos || body.Root != root:
			return nil, bad("%s: it signs size %d and root %s; the entries make size %d and root %s: history was rewritten",
				CheckpointFile, body.Size, b64(body.Root), m.EndPos, b64(root))
		}
		if after == nil {
			if err := checkTiles(a, leaves); err != nil {
				return nil, err
			}
		}
		next = m.EndPos
	}
	return prefix, nil
}

// checkTiles compares the archive's tile files with the tiles of the tree
// of its end size, computed from the leaves (every leaf from the genesis).
func checkTiles(a *Archive, leaves []tlog.Hash) error {
	m := &a.Manifest
	r := &leafReader{leaves: leaves, memo: map[int64]tlog.Hash{}}
	var want []string
	for _, t := range tlog.NewTiles(audit.TileHeight, m.StartPos, m.EndPos) {
		path := audit.TilePath(t)
		want = append(want, path)
		data, err := os.ReadFile(filepath.Join(a.Dir, filepath.FromSlash(path)))
		if err != nil {
			return fmt.Errorf("%w: %s: tile %s: %v", ErrInvalid, a.Dir, path, err)
		}
		exp, err := tlog.ReadTileData(t, r)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, exp) {
			return fmt.Errorf("%w: %s: tile %s is not the tile of the archived entries' tree", ErrInvalid, a.Dir, path)
		}
	}
	if !slices.Equal(want, m.Tiles) {
		return fmt.Errorf("%w: %s: the manifest lists tiles %v, the range's tiles are %v", ErrInvalid, a.Dir, m.Tiles, want)
	}
	return nil
}

// leafReader computes the tlog stored hashes of a tree from its leaves.
type leafReader struct {
	leaves []tlog.Hash
	memo   map[int64]tlog.Hash
}

func (r *leafReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, n := tlog.SplitStoredHashIndex(x)
		h, err := r.subtree(level, n)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func (r *leafReader) subtree(level int, n int64) (tlog.Hash, error) {
	if level == 0 {
		if n >= int64(len(r.leaves)) {
			return tlog.Hash{}, fmt.Errorf("archive: leaf %d is past the archived entries", n)
		}
		return r.leaves[n], nil
	}
	idx := tlog.StoredHashIndex(level, n)
	if h, ok := r.memo[idx]; ok {
		return h, nil
	}
	left, err := r.subtree(level-1, 2*n)
	if err != nil {
		return tlog.Hash{}, err
	}
	right, err := r.subtree(level-1, 2*n+1)
	if err != nil {
		return tlog.Hash{}, err
	}
	h := tlog.NodeHash(left, right)
	r.memo[idx] = h
	return h, nil
}
