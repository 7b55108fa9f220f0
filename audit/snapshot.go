package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/metrics"
)

// A batch snapshot is a signed record of a range [from, to] of one chain:
// a DSSE envelope (payloadType PayloadType) whose payload is an in-toto
// Statement v1, serialised as RFC 8785 canonical JSON:
//
//	{"_type": "https://in-toto.io/Statement/v1",
//	 "subject": [{"name": "ordo/<tenant>/<partition>#<from>-<to>",
//	              "digest": {"sha256": "<merkle_root hex>"}}],
//	 "predicateType": "https://ordo.dev/chain-range/v1",
//	 "predicate": {ChainRange}}
//
// The Merkle root is RFC 6962 over the range alone: leaf i is the link of
// the entry at chain_pos from+i, hashed as LeafHash does.
const (
	PayloadType         = "application/vnd.in-toto+json"
	StatementType       = "https://in-toto.io/Statement/v1"
	ChainRangePredicate = "https://ordo.dev/chain-range/v1"
)

// Statement is an in-toto Statement v1 about a chain range.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Subject  `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     ChainRange `json:"predicate"`
}

// Subject is an in-toto resource descriptor.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// ChainRange is the predicate of ChainRangePredicate.
type ChainRange struct {
	BatchID       string `json:"batch_id"`
	TenantID      string `json:"tenant_id"`
	PartitionKey  string `json:"partition_key"`
	FromChainPos  int64  `json:"from_chain_pos"`
	ToChainPos    int64  `json:"to_chain_pos"`
	EntryCount    int64  `json:"entry_count"`
	FromChainLink string `json:"from_chain_link"` // hex
	ToChainLink   string `json:"to_chain_link"`   // hex
	MerkleRoot    string `json:"merkle_root"`     // hex
	SnapshotHLC   string `json:"snapshot_hlc"`
	// Leaf documents the leaf encoding: "rfc6962:sha256(0x00||link)".
	Leaf string `json:"leaf"`
}

// LeafEncoding is the value of ChainRange.Leaf.
const LeafEncoding = "rfc6962:sha256(0x00||link)"

// Snapshotter creates batch snapshots.
type Snapshotter struct {
	Store driver.AuditStore
	Key   *PrivateKey
	// Clock stamps snapshot_hlc; without it, the range's last t_hlc is used.
	Clock   *hlc.Clock
	Metrics *metrics.Metrics // counts scheduler_batch_snapshots_created_total
	Now     func() time.Time
}

// ErrRangeRefused is wrapped by Create's refusals of the range asked for
// (out of bounds, empty, or not intact); other errors are the store's.
var ErrRangeRefused = errors.New("audit: snapshot refused")

// Create signs and stores a snapshot of chain k's entries at chain_pos
// from to to inclusive (to < 0: up to the last entry). It refuses a range
// that is not intact (a gap, a link that does not recompute, an entry that
// does not follow the one before it): a snapshot vouches for what it
// covers.
func (s *Snapshotter) Create(ctx context.Context, k chain.Key, from, to int64) (*driver.Snapshot, error) {
	if s.Key == nil {
		return nil, errors.New("audit: snapshot: no signing key")
	}
	if from < 0 || (to >= 0 && to < from) {
		return nil, fmt.Errorf("%w: bad range %d..%d", ErrRangeRefused, from, to)
	}
	end := int64(-1)
	if to >= 0 {
		end = to + 1
	}
	rs, err := readRange(ctx, s.Store, k, from, end)
	if err != nil {
		return nil, err
	}
	if rs.problem != "" {
		return nil, fmt.Errorf("%w: %s: %s", ErrRangeRefused, Origin(k), rs.problem)
	}
	if rs.count == 0 {
		return nil, fmt.Errorf("%w: chain %s has no entries at chain_pos %d..%d", ErrRangeRefused, Origin(k), from, to)
	}
	if to >= 0 && rs.count != to-from+1 {
		return nil, fmt.Errorf("%w: chain %s has entries only up to chain_pos %d", ErrRangeRefused, Origin(k), from+rs.count-1)
	}
	to = from + rs.count - 1
	snapHLC := rs.lastTHLC
	if s.Clock != nil {
		t, err := s.Clock.Now()
		if err != nil {
			return nil, err
		}
		snapHLC = t.String()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	snap := &driver.Snapshot{
		BatchID: uuid.New(), Key: k, SnapshotHLC: snapHLC, FromPos: from, ToPos: to,
		FromLink: rs.first, ToLink: rs.last, EntryCount: rs.count, MerkleRoot: chain.Hash(rs.tree.root()),
		KeyID: s.Key.KeyID(), CreatedAt: now(),
	}
	st := snapshotStatement(snap)
	body, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if body, err = jcs.Transform(body); err != nil {
		return nil, err
	}
	signer, err := dsse.NewEnvelopeSigner(dsseSigner{s.Key})
	if err != nil {
		return nil, err
	}
	env, err := signer.SignPayload(ctx, PayloadType, body)
	if err != nil {
		return nil, err
	}
	if snap.Envelope, err = json.Marshal(env); err != nil {
		return nil, err
	}
	if err := s.Store.InsertSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	if s.Metrics != nil {
		s.Metrics.BatchSnapshots.Inc()
	}
	return snap, nil
}

// SnapshotBatch records, for each chain a dequeued batch touched, one
// snapshot of the range from its earliest to its latest leased entry
// (leases without a t_hlc, i.e. legacy-only jobs, are ignored). A worker
// calls it after Queue.Dequeue with the batch's leases.
func (s *Snapshotter) SnapshotBatch(ctx context.Context, leases []driver.Lease) ([]*driver.Snapshot, error) {
	type bounds struct{ lo, hi string }
	byChain := map[chain.Key]*bounds{}
	var keys []chain.Key
	for _, l := range leases {
		if l.THLC == "" {
			continue
		}
		k := chain.Key{TenantID: l.TenantID, PartitionKey: l.PartitionKey}
		b, ok := byChain[k]
		if !ok {
			b = &bounds{l.THLC, l.THLC}
			byChain[k] = b
			keys = append(keys, k)
		}
		b.lo, b.hi = min(b.lo, l.THLC), max(b.hi, l.THLC)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].TenantID != keys[j].TenantID {
			return keys[i].TenantID < keys[j].TenantID
		}
		return keys[i].PartitionKey < keys[j].PartitionKey
	})
	var out []*driver.Snapshot
	for _, k := range keys {
		b := byChain[k]
		from, ok, err := s.Store.PosOf(ctx, k, b.lo)
		if err != nil {
			return out, err
		}
		to, ok2, err := s.Store.PosOf(ctx, k, b.hi)
		if err != nil {
			return out, err
		}
		if !ok || !ok2 {
			return out, fmt.Errorf("audit: snapshot: a leased entry of %s is not in the log", Origin(k))
		}
		snap, err := s.Create(ctx, k, from, to)
		if err != nil {
			return out, err
		}
		out = append(out, snap)
	}
	return out, nil
}

func snapshotStatement(s *driver.Snapshot) Statement {
	root := hex.EncodeToString(s.MerkleRoot[:])
	return Statement{
		Type: StatementType,
		Subject: []Subject{{
			Name:   fmt.Sprintf("%s#%d-%d", Origin(s.Key), s.FromPos, s.ToPos),
			Digest: map[string]string{"sha256": root},
		}},
		PredicateType: ChainRangePredicate,
		Predicate: ChainRange{
			BatchID: s.BatchID.String(), TenantID: s.Key.TenantID, PartitionKey: s.Key.PartitionKey,
			FromChainPos: s.FromPos, ToChainPos: s.ToPos, EntryCount: s.EntryCount,
			FromChainLink: s.FromLink.String(), ToChainLink: s.ToLink.String(), MerkleRoot: root,
			SnapshotHLC: s.SnapshotHLC, Leaf: LeafEncoding,
		},
	}
}

// rangeState is what reading a range found.
type rangeState struct {
	count       int64
	first, last chain.Hash
	lastTHLC    string
	tree        treeBuilder
	problem     string // first integrity problem, if any
	problemPos  int64
	problemJob  uuid.UUID
}

// readRange streams chain k's entries [from, end) (end < 0: to the last),
// building the range's Merkle tree and checking that it is intact: no
// gap, every link recomputes, every entry follows the one before.
func readRange(ctx context.Context, s driver.AuditStore, k chain.Key, from, end int64) (*rangeState, error) {
	rs := &rangeState{}
	fail := func(e *driver.LogEntry, format string, args ...any) {
		if rs.problem == "" {
			rs.problem, rs.problemPos, rs.problemJob = fmt.Sprintf(format, args...), e.Pos, e.JobID
		}
	}
	err := s.Scan(ctx, driver.ScanParams{Key: k, From: from, To: end, WithPayload: false}, func(e *driver.LogEntry) error {
		want := from + rs.count
		if e.Pos != want {
			fail(e, "chain_pos %d missing", want)
		}
		var link, prev, ph chain.Hash
		copy(link[:], e.Link)
		copy(prev[:], e.PrevLink)
		copy(ph[:], e.PayloadHash)
		if got, err := chain.Link(prev, e.JobID, string(e.THLC), ph); err != nil || got != link || len(e.Link) != 32 {
			fail(e, "the link of chain_pos %d (job %s) does not recompute", e.Pos, e.JobID)
		}
		if rs.count > 0 && prev != rs.last {
			fail(e, "chain_pos %d (job %s) does not follow the entry before it", e.Pos, e.JobID)
		}
		if rs.count == 0 {
			rs.first = link
		}
		rs.last, rs.lastTHLC = link, string(e.THLC)
		rs.tree.add(LeafHash(link))
		rs.count++
		return nil
	})
	return rs, err
}

// SnapshotCheck is the verdict on one snapshot.
type SnapshotCheck struct {
	BatchID     uuid.UUID `json:"batch_id"`
	Valid       bool      `json:"valid"`
	SignatureOK bool      `json:"signature_ok"`
	Problems    []string  `json:"problems"`
}

// VerifySnapshot checks a stored snapshot: the envelope's signature with
// key, that the signed statement is the one the row describes, and that
// the range is still intact in the log (same entries, same links, same
// Merkle root, nothing missing).
func VerifySnapshot(ctx context.Context, s driver.AuditStore, snap *driver.Snapshot, key *PublicKey) (*SnapshotCheck, error) {
	c := &SnapshotCheck{BatchID: snap.BatchID, Problems: []string{}}
	bad := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	var env dsse.Envelope
	if err := json.Unmarshal(snap.Envelope, &env); err != nil {
		bad("the envelope is not a DSSE envelope: %v", err)
		return c, nil
	}
	if env.PayloadType != PayloadType {
		bad("the envelope's payloadType is %q, want %q", env.PayloadType, PayloadType)
	}
	verifier, err := dsse.NewEnvelopeVerifier(dsseVerifier{key})
	if err != nil {
		return nil, err
	}
	if _, err := verifier.Verify(ctx, &env); err != nil {
		bad("the envelope's signature does not verify with key %s: %v", key.KeyID(), err)
	} else {
		c.SignatureOK = true
	}
	// The DSSE library decodes leniently (spare bits, newlines); one
	// signed statement must have one text form.
	for _, sig := range env.Signatures {
		if _, err := decodeCanonical(sig.Sig); err != nil {
			bad("the envelope's signature by %q is not canonical standard base64", sig.KeyID)
		}
	}
	body, err := decodeCanonical(env.Payload)
	if err != nil {
		bad("the envelope's payload is not canonical standard base64")
		if body, err = env.DecodeB64Payload(); err != nil {
			return c, nil
		}
	}
	// The key_id column is what lists show and nothing signs: it must
	// name the key that verified, as the envelope's signature does.
	if snap.KeyID != key.KeyID() {
		bad("the batch_snapshot row's key_id %q is not the verifying key %s", snap.KeyID, key.KeyID())
	}
	for _, sig := range env.Signatures {
		if sig.KeyID != key.KeyID() {
			bad("the envelope carries a signature by key %q, not %s", sig.KeyID, key.KeyID())
		}
	}
	var st Statement
	if err := json.Unmarshal(body, &st); err != nil {
		bad("the signed payload is not an in-toto statement: %v", err)
		return c, nil
	}
	if st.Type != StatementType || st.PredicateType != ChainRangePredicate {
		bad("the statement is %s / %s, want %s / %s", st.Type, st.PredicateType, StatementType, ChainRangePredicate)
	}
	want := snapshotStatement(snap).Predicate
	p := st.Predicate
	if p != want {
		bad("the batch_snapshot row differs from what was signed (row: %+v; signed: %+v)", want, p)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != p.MerkleRoot {
		bad("the statement's subject digest is not its Merkle root")
	}
	// Hold the log to what was signed, not to the (editable) row.
	k := chain.Key{TenantID: p.TenantID, PartitionKey: p.PartitionKey}
	if p.EntryCount != p.ToChainPos-p.FromChainPos+1 || p.EntryCount < 1 {
		bad("the signed range %d..%d does not hold %d entries", p.FromChainPos, p.ToChainPos, p.EntryCount)
		return c, nil
	}
	rs, err := readRange(ctx, s, k, p.FromChainPos, p.ToChainPos+1)
	if err != nil {
		return nil, err
	}
	if rs.problem != "" {
		bad("the range is no longer intact: %s", rs.problem)
	}
	if rs.count != p.EntryCount {
		bad("the log holds %d of the %d entries signed at chain_pos %d..%d: entries were removed", rs.count, p.EntryCount, p.FromChainPos, p.ToChainPos)
	}
	if rs.count > 0 {
		if rs.first.String() != p.FromChainLink {
			bad("the first entry's link is %s, %s was signed", rs.first, p.FromChainLink)
		}
		if rs.last.String() != p.ToChainLink && rs.count == p.EntryCount {
			bad("the last entry's link is %s, %s was signed", rs.last, p.ToChainLink)
		}
		root := chain.Hash(rs.tree.root())
		if root.String() != p.MerkleRoot {
			bad("the Merkle root recomputed from the log is %s, %s was signed: the range was rewritten", root, p.MerkleRoot)
		}
	}
	c.Valid = len(c.Problems) == 0
	return c, nil
}
