package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// ProofFormat identifies version 1 of the proof file format.
const ProofFormat = "ordo-proof/v1"

// Proof is a proof file: everything an auditor needs, besides the public
// key, to check offline that a job is in a chain (inclusion) or that a
// chain only grew between two sizes (consistency). JSON, hashes in
// standard base64 (as in checkpoints), links and payload hashes in hex (as
// in docs/chain-spec.md).
type Proof struct {
	Format       string `json:"format"` // ProofFormat
	Type         string `json:"type"`   // "inclusion" or "consistency"
	TenantID     string `json:"tenant_id"`
	PartitionKey string `json:"partition_key"`
	// Checkpoint is the signed checkpoint (note text) the proof leads to:
	// for inclusion the tree containing the entry, for consistency the
	// newer tree.
	Checkpoint string `json:"checkpoint"`

	// Inclusion: the entry, its leaf index (= chain_pos) and the RFC 6962
	// audit path from its leaf to the checkpoint's root.
	Entry *ProofEntry `json:"entry,omitempty"`
	// A pointer so that an inclusion proof always shows it, 0 included
	// (docs/audit.md), and a consistency proof never does.
	LeafIndex *int64 `json:"leaf_index,omitempty"`

	// Consistency: the older tree's size and root and, when one was
	// signed at that size, its checkpoint; the RFC 6962 consistency proof
	// from it to the checkpoint.
	OldSize       int64  `json:"old_size,omitempty"`
	OldRoot       string `json:"old_root,omitempty"`
	OldCheckpoint string `json:"old_checkpoint,omitempty"`

	Hashes []string `json:"hashes"` // the proof's hashes, base64
}

// ProofEntry is a log entry as a proof carries it: enough to recompute its
// link, and so its leaf.
type ProofEntry struct {
	JobID       string  `json:"job_id"`
	ChainPos    int64   `json:"chain_pos"`
	THLC        string  `json:"t_hlc"`
	PayloadHash string  `json:"payload_hash"`
	PrevLink    *string `json:"prev_link"` // null for the genesis entry
	Link        string  `json:"link"`
}

// ProveInclusion's answers that are not the store's errors.
var (
	// ErrNotCovered: the job is in the log, after the chain's latest
	// checkpoint; a later checkpoint will cover it.
	ErrNotCovered = errors.New("audit: not covered by a checkpoint yet")
	// ErrTreeDamaged: the stored tree does not lead from the entry to the
	// signed root.
	ErrTreeDamaged = errors.New("audit: the stored tree is damaged")
)

// ProveInclusion proves that job r.JobID of tenant r.TenantID (any tenant
// when it is "") is in its chain, against the chain's latest stored
// checkpoint.
func ProveInclusion(ctx context.Context, s driver.AuditStore, r driver.JobRef) (*Proof, error) {
	jobID := r.JobID
	locs, err := s.FindJob(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(locs) == 0 {
		return nil, fmt.Errorf("audit: job %s: %w in the log", jobID, driver.ErrRecordNotFound)
	}
	l := locs[0]
	cps, err := s.Checkpoints(ctx, l.Key, 1)
	if err != nil {
		return nil, err
	}
	if len(cps) == 0 || cps[0].Size <= l.Pos {
		return nil, fmt.Errorf("%w: job %s (chain_pos %d of %s); run the checkpointer first", ErrNotCovered, jobID, l.Pos, Origin(l.Key))
	}
	cp := cps[0]
	rp, err := tlog.ProveRecord(cp.Size, l.Pos, treeHashReader(ctx, s, l.Key))
	if err != nil {
		return nil, fmt.Errorf("audit: inclusion proof of job %s: %w", jobID, err)
	}
	// The proof is cut from the stored tree, a cache: one that does not
	// lead from the entry to the signed root is refused here rather than
	// handed to an auditor (issue 14: a changed leaf hash made proof
	// inclusion emit a proof that proof check rejects).
	if body, _, err := OpenCheckpoint(cp.Note, nil); err != nil || tlog.CheckRecord(rp, body.Size, body.Root, l.Pos, LeafHash(l.Link)) != nil {
		return nil, fmt.Errorf("%w: the stored tree of %s does not prove job %s into its checkpoint of size %d "+
			"(ordo verify reports tree_mismatch)", ErrTreeDamaged, Origin(l.Key), jobID, cp.Size)
	}
	e := &ProofEntry{JobID: l.JobID.String(), ChainPos: l.Pos, THLC: l.THLC, PayloadHash: l.PayloadHash.String(), Link: l.Link.String()}
	if !l.PrevLink.IsZero() {
		p := l.PrevLink.String()
		e.PrevLink = &p
	}
	msg, err := WithCosignatures(ctx, CosignatureStoreOf(s), cp)
	if err != nil {
		return nil, err
	}
	return &Proof{
		Format: ProofFormat, Type: "inclusion", TenantID: l.Key.TenantID, PartitionKey: l.Key.PartitionKey,
		Checkpoint: string(msg), Entry: e, LeafIndex: &l.Pos, Hashes: hashes64(rp),
	}, nil
}

// ProveConsistency proves that chain k's tree of size oldSize is a prefix
// of its tree at the checkpoint of size newSize (0: the latest checkpoint).
func ProveConsistency(ctx context.Context, s driver.AuditStore, k chain.Key, oldSize, newSize int64) (*Proof, error) {
	cps, err := s.Checkpoints(ctx, k, 0)
	if err != nil {
		return nil, err
	}
	var newCP, oldCP *driver.Checkpoint
	for i := range cps {
		if newCP == nil && (newSize == 0 || cps[i].Size == newSize) {
			newCP = &cps[i]
		}
		if cps[i].Size == oldSize && oldCP == nil {
			oldCP = &cps[i]
		}
	}
	if newCP == nil {
		if newSize == 0 {
			return nil, fmt.Errorf("audit: chain %s has no checkpoint yet", Origin(k))
		}
		return nil, fmt.Errorf("audit: chain %s has no checkpoint of size %d", Origin(k), newSize)
	}
	if oldSize < 1 || oldSize > newCP.Size {
		return nil, fmt.Errorf("audit: consistency proof from size %d to %d: want 1 <= from <= to", oldSize, newCP.Size)
	}
	r := treeHashReader(ctx, s, k)
	tp, err := tlog.ProveTree(newCP.Size, oldSize, r)
	if err != nil {
		return nil, fmt.Errorf("audit: consistency proof: %w", err)
	}
	oldRoot, err := tlog.TreeHash(oldSize, r)
	if err != nil {
		return nil, err
	}
	msg, err := WithCosignatures(ctx, CosignatureStoreOf(s), *newCP)
	if err != nil {
		return nil, err
	}
	p := &Proof{
		Format: ProofFormat, Type: "consistency", TenantID: k.TenantID, PartitionKey: k.PartitionKey,
		Checkpoint: string(msg), OldSize: oldSize, OldRoot: b64(oldRoot), Hashes: hashes64(tp),
	}
	if oldCP != nil {
		p.OldCheckpoint = string(oldCP.Note)
	}
	return p, nil
}

func hashes64(hs []tlog.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = b64(h)
	}
	return out
}

// ProofResult is the verdict of CheckProof.
type ProofResult struct {
	Valid   bool     `json:"valid"`
	Type    string   `json:"type"`
	Origin  string   `json:"origin"`
	Size    int64    `json:"size"`               // the checkpoint's tree size
	OldSize int64    `json:"old_size,omitempty"` // consistency
	Notes   []string `json:"notes"`              // what was and was not established
	Problem string   `json:"problem,omitempty"`  // why it is not valid
}

// CheckProof verifies a proof offline, with the public key alone. trusted
// are checkpoints the auditor kept: for a consistency proof, one of the
// same chain and of size OldSize is used as the old tree (its root must
// match the proof's); without one, the proof's own old checkpoint (if it
// has one) is verified instead, and failing that its bare old root is
// used, which only shows that some tree of that size is a prefix.
func CheckProof(p *Proof, key *PublicKey, trusted ...[]byte) (*ProofResult, error) {
	if key == nil {
		return nil, errors.New("audit: checking a proof needs the public key")
	}
	if p.Format != ProofFormat {
		return nil, fmt.Errorf("audit: proof format %q, want %q", p.Format, ProofFormat)
	}
	res := &ProofResult{Type: p.Type, Notes: []string{}}
	fail := func(format string, args ...any) (*ProofResult, error) {
		res.Problem = fmt.Sprintf(format, args...)
		return res, nil
	}
	k := chain.Key{TenantID: p.TenantID, PartitionKey: p.PartitionKey}
	res.Origin = Origin(k)
	cp, _, err := OpenCheckpoint([]byte(p.Checkpoint), key)
	if err != nil {
		return fail("the checkpoint does not verify: %v", err)
	}
	if !OriginOf(cp.Origin, k) {
		return fail("the checkpoint is for %q, the proof for %q", cp.Origin, res.Origin)
	}
	res.Size = cp.Size
	res.Notes = append(res.Notes, fmt.Sprintf("checkpoint %s size %d signed by %s", cp.Origin, cp.Size, key.KeyID()))
	hashes := make([]tlog.Hash, len(p.Hashes))
	for i, s := range p.Hashes {
		b, err := decodeCanonical(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("audit: proof hash %d is not a canonical base64 SHA-256 hash", i)
		}
		copy(hashes[i][:], b)
	}
	switch p.Type {
	case "inclusion":
		e := p.Entry
		if e == nil {
			return nil, errors.New("audit: inclusion proof without an entry")
		}
		link, err := entryLink(e)
		if err != nil {
			return fail("%v", err)
		}
		if p.LeafIndex == nil || *p.LeafIndex != e.ChainPos {
			return fail("leaf index %s is not the entry's chain_pos %d", leafIndexText(p.LeafIndex), e.ChainPos)
		}
		if e.ChainPos >= cp.Size {
			return fail("chain_pos %d is beyond the checkpoint's size %d", e.ChainPos, cp.Size)
		}
		if err := tlog.CheckRecord(hashes, cp.Size, cp.Root, e.ChainPos, LeafHash(link)); err != nil {
			return fail("the entry is not in the signed tree: %v", err)
		}
		res.Notes = append(res.Notes, fmt.Sprintf("job %s is leaf %d (t_hlc %s, link %s)", e.JobID, e.ChainPos, e.THLC, e.Link))
	case "consistency":
		res.OldSize = p.OldSize
		oldRoot, have := tlog.Hash{}, false
		for _, t := range trusted {
			b, _, err := OpenCheckpoint(t, key)
			if err != nil {
				return fail("your checkpoint does not verify: %v", err)
			}
			if !OriginOf(b.Origin, k) {
				continue
			}
			if b.Size != p.OldSize {
				return fail("your checkpoint has size %d but the proof starts at size %d: ask for a proof --from %d", b.Size, p.OldSize, b.Size)
			}
			oldRoot, have = b.Root, true
			res.Notes = append(res.Notes, fmt.Sprintf("old tree: your checkpoint of size %d", b.Size))
		}
		if !have && p.OldCheckpoint != "" {
			b, _, err := OpenCheckpoint([]byte(p.OldCheckpoint), key)
			if err != nil {
				return fail("the proof's old checkpoint does not verify: %v", err)
			}
			if !OriginOf(b.Origin, k) || b.Size != p.OldSize {
				return fail("the proof's old checkpoint is for %s size %d, not %s size %d", b.Origin, b.Size, res.Origin, p.OldSize)
			}
			oldRoot, have = b.Root, true
			res.Notes = append(res.Notes, fmt.Sprintf("old tree: the signed checkpoint of size %d in the proof", b.Size))
		}
		if !have {
			b, err := decodeCanonical(p.OldRoot)
			if err != nil || len(b) != tlog.HashSize {
				return nil, errors.New("audit: the proof's old_root is not a base64 SHA-256 hash")
			}
			copy(oldRoot[:], b)
			res.Notes = append(res.Notes, "old tree: the proof's unsigned old_root (give your own checkpoint to hold the log to it)")
		} else if p.OldRoot != "" && p.OldRoot != b64(oldRoot) {
			return fail("the log's tree of size %d has root %s, but the checkpoint signed %s: history was rewritten", p.OldSize, p.OldRoot, b64(oldRoot))
		}
		if p.OldSize < 1 || p.OldSize > cp.Size {
			return fail("old size %d is not between 1 and %d", p.OldSize, cp.Size)
		}
		if err := tlog.CheckTree(hashes, cp.Size, cp.Root, p.OldSize, oldRoot); err != nil {
			return fail("the tree of size %d is not a prefix of the signed tree of size %d (history rewritten or truncated): %v", p.OldSize, cp.Size, err)
		}
	default:
		return nil, fmt.Errorf("audit: unknown proof type %q", p.Type)
	}
	res.Valid = true
	return res, nil
}

func entryLink(e *ProofEntry) (chain.Hash, error) {
	id, err := uuid.Parse(e.JobID)
	if err != nil {
		return chain.Hash{}, fmt.Errorf("entry job_id: %v", err)
	}
	ph, err := chain.ParseHash(e.PayloadHash)
	if err != nil {
		return chain.Hash{}, fmt.Errorf("entry payload_hash: %v", err)
	}
	var prev chain.Hash
	if e.PrevLink != nil {
		if prev, err = chain.ParseHash(*e.PrevLink); err != nil {
			return chain.Hash{}, fmt.Errorf("entry prev_link: %v", err)
		}
	}
	link, err := chain.ParseHash(e.Link)
	if err != nil {
		return chain.Hash{}, fmt.Errorf("entry link: %v", err)
	}
	got, err := chain.Link(prev, id, e.THLC, ph)
	if err != nil {
		return chain.Hash{}, fmt.Errorf("entry: %v", err)
	}
	if got != link {
		return chain.Hash{}, fmt.Errorf("the entry's link %s is not SHA-256(prev_link || job_id || t_hlc || payload_hash) = %s", link, got)
	}
	return link, nil
}

// ParseProof reads a proof file.
func ParseProof(b []byte) (*Proof, error) {
	var p Proof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("audit: proof file: %w", err)
	}
	return &p, nil
}

func leafIndexText(i *int64) string {
	if i == nil {
		return "(missing)"
	}
	return fmt.Sprint(*i)
}
