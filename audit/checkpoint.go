package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Each chain is also an RFC 6962 Merkle tree whose leaf i is the entry at
// chain_pos i (leaf data: its link; see LeafHash). A checkpoint is a signed
// note in the C2SP tlog-checkpoint format:
//
//	ordo/<tenant_id>/<partition_key>
//	<tree size, decimal>
//	<root hash, standard base64>
//
//	— <key name> <base64(key hash || Ed25519 signature)>
//
// The origin line names the chain: the tenant id cannot contain '/', so
// everything after the second '/' is the partition key, verbatim (empty for
// the default partition).

// OriginPrefix starts every checkpoint origin.
const OriginPrefix = "ordo/"

// treeMovedRetries bounds how often RunOnce goes on from a tree another
// writer extended during one round.
const treeMovedRetries = 3

// LeadershipName is the duty the checkpointer leads (driver.Leadership).
const LeadershipName = "ordo.checkpointer"

// Origin returns the checkpoint origin of chain k: ordo/<tenant>/ and the
// partition key with every byte outside RFC 3986's path characters
// (letters, digits, -._~!$&'()*,;=:@/), and so every space, "+", "%",
// control and non-ASCII byte, percent-encoded in upper-case hex. C2SP
// tlog-checkpoint asks origins for no spaces and no "+"; a key of path
// characters only, as most are, reads as itself.
func Origin(k chain.Key) string {
	return OriginPrefix + k.TenantID + "/" + escapeOrigin(k.PartitionKey)
}

// OriginOf reports whether origin names chain k: its escaped form, or its
// legacy form unless that text is the escaped origin of another chain (a
// key holding "%20" verbatim against one holding a space: the escaped
// reading wins).
func OriginOf(origin string, k chain.Key) bool {
	if origin == Origin(k) {
		return true
	}
	if origin != LegacyOrigin(k) {
		return false
	}
	p, err := ParseOrigin(origin)
	return err == nil && p == k
}

// LegacyOrigin is the origin checkpoints had before the partition key was
// escaped (the key verbatim); it differs from Origin only for keys with
// other bytes, and a verifier accepts it for checkpoints signed then.
func LegacyOrigin(k chain.Key) string { return OriginPrefix + k.TenantID + "/" + k.PartitionKey }

// originSafe are the bytes an origin carries as themselves.
const originSafe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*,;=:@/"

func escapeOrigin(partition string) string {
	var b strings.Builder
	for i := 0; i < len(partition); i++ {
		c := partition[i]
		if strings.IndexByte(originSafe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// ParseOrigin returns the chain an origin names, escaped (Origin) or, for
// a key that needed no escaping or a legacy origin, verbatim.
func ParseOrigin(origin string) (chain.Key, error) {
	rest, ok := strings.CutPrefix(origin, OriginPrefix)
	tenant, escaped, ok2 := strings.Cut(rest, "/")
	bad := fmt.Errorf("audit: %q is not an ordo checkpoint origin (ordo/<tenant>/<partition>)", origin)
	if !ok || !ok2 || chain.ValidateTenantID(tenant) != nil {
		return chain.Key{}, bad
	}
	partition, err := url.PathUnescape(escaped)
	if err != nil || Origin(chain.Key{TenantID: tenant, PartitionKey: partition}) != origin {
		partition = escaped // a legacy origin: the key verbatim
	}
	if chain.ValidatePartitionKey(partition) != nil {
		return chain.Key{}, bad
	}
	return chain.Key{TenantID: tenant, PartitionKey: partition}, nil
}

// CheckpointBody is what a checkpoint states.
type CheckpointBody struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// Key returns the chain the checkpoint is about.
func (b CheckpointBody) Key() (chain.Key, error) { return ParseOrigin(b.Origin) }

// Text returns the note text of the body.
func (b CheckpointBody) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", b.Origin, b.Size, base64.StdEncoding.EncodeToString(b.Root[:]))
}

// decodeCanonical decodes standard, padded base64 (what C2SP notes and
// DSSE use) and refuses any text that is not the one encoding of its
// bytes: spare bits set, newlines inside (which encoding/base64 skips),
// missing padding. Every hash and signature then has one text form.
func decodeCanonical(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not the canonical base64 of its bytes")
	}
	return b, nil
}

// ParseCheckpointText reads a checkpoint's note text. Extension lines after
// the root are allowed and ignored, but each must be non-empty (C2SP
// tlog-checkpoint).
func ParseCheckpointText(text string) (CheckpointBody, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return CheckpointBody{}, errors.New("audit: checkpoint: want origin, size and root lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return CheckpointBody{}, fmt.Errorf("audit: checkpoint: bad tree size %q", lines[1])
	}
	root, err := decodeCanonical(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return CheckpointBody{}, fmt.Errorf("audit: checkpoint: bad root hash %q (want canonical base64 of 32 bytes)", lines[2])
	}
	for rest := lines[3]; rest != ""; {
		var ext string
		ext, rest, _ = strings.Cut(rest, "\n")
		if ext == "" {
			return CheckpointBody{}, errors.New("audit: checkpoint: empty extension line")
		}
	}
	b := CheckpointBody{Origin: lines[0], Size: size}
	copy(b.Root[:], root)
	return b, nil
}

// OpenCheckpoint verifies a signed checkpoint with key and returns what it
// states. With a nil key the signature is not checked (signed is false).
func OpenCheckpoint(msg []byte, key *PublicKey) (b CheckpointBody, signed bool, err error) {
	var n *note.Note
	if key == nil {
		n, err = note.Open(msg, note.VerifierList())
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			if err == nil {
				err = errors.New("unexpectedly verified")
			}
			return CheckpointBody{}, false, fmt.Errorf("audit: checkpoint: %w", err)
		}
		n = unverified.Note
	} else {
		if err := checkSignatureLines(msg, key.NoteVerifier()); err != nil {
			return CheckpointBody{}, false, fmt.Errorf("audit: checkpoint signature (key %s): %w", key.KeyID(), err)
		}
		if n, err = note.Open(msg, note.VerifierList(key.NoteVerifier())); err != nil {
			return CheckpointBody{}, false, fmt.Errorf("audit: checkpoint signature (key %s): %w", key.KeyID(), err)
		}
	}
	b, err = ParseCheckpointText(n.Text)
	return b, key != nil, err
}

// checkSignatureLines refuses what note.Open lets through: a signature in
// non-canonical base64, and a second signature by the key that verifies
// (note.Open checks the first and skips the others, so a failing one went
// unnoticed).
func checkSignatureLines(msg []byte, v note.Verifier) error {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return errors.New("malformed note: no signature block")
	}
	byKey := 0
	for _, line := range strings.Split(strings.TrimSuffix(string(msg[i+2:]), "\n"), "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		if !ok {
			return fmt.Errorf("malformed signature line %q", line)
		}
		name, b64, ok := strings.Cut(rest, " ")
		sig, err := decodeCanonical(b64)
		if !ok || err != nil || len(sig) < 5 {
			return fmt.Errorf("signature line of %q: not canonical base64", name)
		}
		if name == v.Name() && binary.BigEndian.Uint32(sig) == v.KeyHash() {
			byKey++
		}
	}
	if byKey > 1 {
		return fmt.Errorf("%d signatures by key %s; a note carries one per key", byKey, v.Name())
	}
	return nil
}

// SignCheckpoint returns the signed note of body.
func SignCheckpoint(body CheckpointBody, key *PrivateKey) ([]byte, error) {
	return note.Sign(&note.Note{Text: body.Text()}, key.NoteSigner())
}

// Checkpointer maintains each chain's stored tree hashes (tlog stored
// hashes, in the chain_tree_hashes table) off the enqueue hot path, and
// signs a checkpoint of every chain that grew. One node at a time does
// it: with Leader set, RunOnce first takes the LeadershipName lease.
type Checkpointer struct {
	Store driver.AuditStore
	Key   *PrivateKey
	// Leader elects one checkpointer among the nodes (the backend); nil,
	// or a backend without leadership, runs unconditionally.
	Leader driver.Leadership
	Holder string // this node's id, for the lease
	// Now is the wall clock for leases and created_at; default time.Now.
	Now      func() time.Time
	LeaseFor time.Duration // default 1 minute
	Interval time.Duration // Run's period; default 10 seconds
	// Chunk bounds the leaves hashed per transaction (default 10,000).
	Chunk  int
	Logger *slog.Logger

	// Witnesses get every new checkpoint (witness.go); with any, each
	// checkpoint is also signed under a key named by its origin.
	Witnesses []*Witness
	// Cosignatures stores the witnesses' cosignatures and where each
	// witness is (nil: every submission starts from size 0, and the 409
	// Conflict the witness answers corrects it).
	Cosignatures    driver.CosignatureStore
	WitnessObserver WitnessObserver

	witnessMu   sync.Mutex
	unwitnessed map[*Witness]map[chain.Key]signedCheckpoint
}

// RunResult reports one RunOnce.
type RunResult struct {
	Led          bool             // this node held the lease
	Leaves       int64            // leaves hashed
	Checkpoints  []CheckpointBody // checkpoints signed
	ChainsFailed []chain.Key      // chains whose new entries did not follow the hashed history
}

// ErrHistoryMismatch means new entries do not follow the entries already
// hashed into a chain's tree: the chain was changed, and the checkpointer
// refuses to sign it.
var ErrHistoryMismatch = errors.New("audit: the chain's entries do not follow its hashed history")

func (c *Checkpointer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checkpointer) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// RunOnce brings every chain's tree up to its head and signs a checkpoint
// for every chain whose tree is ahead of its latest checkpoint. A chain
// whose new entries do not follow its hashed history is skipped (and
// reported in ChainsFailed, with ErrHistoryMismatch logged): its tree and
// checkpoints stay as they were, evidence for the verifier.
func (c *Checkpointer) RunOnce(ctx context.Context) (RunResult, error) {
	var res RunResult
	if c.Key == nil {
		return res, errors.New("audit: checkpointer needs a signing key")
	}
	if c.Leader != nil {
		lease := c.LeaseFor
		if lease <= 0 {
			lease = time.Minute
		}
		now := c.now()
		ok, err := c.Leader.TryLead(ctx, driver.LeadParams{Name: LeadershipName, Holder: c.Holder, Until: now.Add(lease), Now: now})
		switch {
		case errors.Is(err, driver.ErrNotSupported):
			// No election on this backend: every node checkpoints, and
			// AppendHashes lets one writer extend each tree.
		case err != nil || !ok:
			return res, err
		}
	}
	res.Led = true
	behind, err := c.Store.TreesBehind(ctx)
	if err != nil {
		return res, err
	}
	var signed []signedCheckpoint
	// The witnesses get what was signed even when a later chain fails the
	// round; their failures are logged and counted, never returned.
	defer func() { c.witnessRound(ctx, signed) }()
chains:
	for _, p := range behind {
		size := p.TreeSize
		for attempt := 0; p.Entries > size; attempt++ {
			n, err := c.extend(ctx, p.Key, size, p.Entries)
			res.Leaves += n
			size += n
			if errors.Is(err, driver.ErrTreeMoved) && attempt < treeMovedRetries {
				// Another checkpointer (another node without leadership,
				// or an operator's ordo proof) extended the tree first:
				// go on from what it stored.
				if size, err = c.Store.TreeSize(ctx, p.Key); err != nil {
					return res, err
				}
				continue
			}
			if errors.Is(err, ErrHistoryMismatch) {
				c.log().Error("checkpointer: refusing to extend a chain whose history changed", "tenant_id", p.Key.TenantID, "partition_key", p.Key.PartitionKey, "error", err)
				res.ChainsFailed = append(res.ChainsFailed, p.Key)
				continue chains
			}
			if err != nil {
				return res, err
			}
			break
		}
		if size == 0 {
			continue
		}
		latest, err := c.Store.Checkpoints(ctx, p.Key, 1)
		if err != nil {
			return res, err
		}
		if len(latest) > 0 && latest[0].Size >= size {
			continue
		}
		body, msg, err := c.sign(ctx, p.Key, size)
		if err == nil {
			signed = append(signed, signedCheckpoint{key: p.Key, body: body, note: msg})
		}
		if errors.Is(err, ErrHistoryMismatch) {
			c.log().Error("checkpointer: refusing to sign a tree that does not follow what was signed", "tenant_id", p.Key.TenantID, "partition_key", p.Key.PartitionKey, "error", err)
			res.ChainsFailed = append(res.ChainsFailed, p.Key)
			continue
		}
		if err != nil {
			return res, err
		}
		res.Checkpoints = append(res.Checkpoints, body)
	}
	return res, nil
}

// Run calls RunOnce every Interval until ctx ends, then resigns the lease.
func (c *Checkpointer) Run(ctx context.Context) error {
	every := c.Interval
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.log().Error("checkpointer run failed", "error", err)
		}
		select {
		case <-ctx.Done():
			if c.Leader != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = c.Leader.Resign(rctx, LeadershipName, c.Holder)
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

func (c *Checkpointer) sign(ctx context.Context, k chain.Key, size int64) (CheckpointBody, []byte, error) {
	r := c.reader(ctx, k, nil)
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		return CheckpointBody{}, nil, fmt.Errorf("audit: tree hash of %s at size %d: %w", Origin(k), size, err)
	}
	if err := c.checkConsistent(ctx, k, size, root, r); err != nil {
		return CheckpointBody{}, nil, err
	}
	body := CheckpointBody{Origin: Origin(k), Size: size, Root: root}
	sign := SignCheckpoint
	if len(c.Witnesses) > 0 {
		sign = SignCheckpointForWitnesses
	}
	msg, err := sign(body, c.Key)
	if err != nil {
		return body, nil, err
	}
	err = c.Store.InsertCheckpoint(ctx, &driver.Checkpoint{Key: k, Size: size, Root: root, Note: msg, KeyName: c.Key.KeyID(), CreatedAt: c.now()})
	if err == nil {
		c.log().Debug("audit: checkpoint signed", "origin", body.Origin, "size", size)
	}
	return body, msg, err
}

// checkConsistent refuses to sign root at size unless it is proven
// consistent with what was signed before, never trusting the stored tree
// (a cache anyone with write access can change; issue 14 had ordo sign a
// root its entries do not hash to, inconsistent with its own previous
// checkpoint). With a previous checkpoint of this key, a consistency
// proof from the tree must lead from the root that checkpoint's note
// signs (not its stored root_hash column) to root: the proof's hashes are
// the ones the new root was computed from, so a changed stored hash under
// the signed part fails it. Without one, the root is recomputed from the
// entries themselves.
func (c *Checkpointer) checkConsistent(ctx context.Context, k chain.Key, size int64, root tlog.Hash, r tlog.HashReader) error {
	mismatch := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrHistoryMismatch, Origin(k), fmt.Sprintf(format, args...))
	}
	// The latest checkpoint; one another key signed (before a key
	// rotation) or that does not open is not built on: the entries are.
	cps, err := c.Store.Checkpoints(ctx, k, 1)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		b, signed, err := OpenCheckpoint(cp.Note, c.Key.Public())
		if err != nil || !signed || !OriginOf(b.Origin, k) || b.Size > size {
			continue
		}
		if b.Size == size {
			if b.Root != root {
				return mismatch("the tree's root at size %d is not the one signed for that size", size)
			}
			return nil
		}
		proof, err := tlog.ProveTree(size, b.Size, r)
		if err == nil {
			err = tlog.CheckTree(proof, size, root, b.Size, b.Root)
		}
		if err != nil {
			return mismatch("the tree at size %d is not consistent with the checkpoint signed at size %d: %v", size, b.Size, err)
		}
		return nil
	}
	var tb treeBuilder
	err = c.Store.Scan(ctx, driver.ScanParams{Key: k, From: 0, To: size}, func(e *driver.LogEntry) error {
		link, err := chain.HashFromBytes(e.Link)
		if err != nil {
			return mismatch("entry %d: %v", e.Pos, err)
		}
		tb.add(LeafHash(link))
		return nil
	})
	if err != nil {
		return err
	}
	if tb.size() != size || tb.root() != root {
		return mismatch("the stored tree's root at size %d is not the root of the chain's first %d entries", size, size)
	}
	return nil
}

// reader reads chain k's stored hashes, from pending first.
func (c *Checkpointer) reader(ctx context.Context, k chain.Key, pending map[int64]tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing []int64
		for i, x := range indexes {
			if h, ok := pending[x]; ok {
				out[i] = h
			} else {
				missing = append(missing, x)
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
		got, err := c.Store.ReadHashes(ctx, k, missing)
		if err != nil {
			return nil, err
		}
		j := 0
		for i, x := range indexes {
			if _, ok := pending[x]; !ok {
				out[i] = got[j]
				if pending != nil {
					pending[x] = got[j]
				}
				j++
			}
		}
		return out, nil
	})
}

// extend hashes entries [size, entries) of chain k into its tree, in
// chunks, each stored in one transaction, and returns how many it added.
// Every new entry must link correctly and follow the last hashed one.
func (c *Checkpointer) extend(ctx context.Context, k chain.Key, size, entries int64) (int64, error) {
	chunk := int64(c.Chunk)
	if chunk <= 0 {
		chunk = 10_000
	}
	added := int64(0)
	for size < entries {
		end := min(entries, size+chunk)
		// Load the hashes the new leaves build on (the complete subtrees
		// along the tree's right edge, and the last leaf) before scanning:
		// no query may run while the scan holds SQLite's one connection.
		pending := map[int64]tlog.Hash{}
		var need []int64
		for l := 0; size>>l > 0; l++ {
			if (size>>l)&1 == 1 {
				need = append(need, tlog.StoredHashIndex(l, (size>>l)-1))
			}
		}
		if size > 0 {
			need = append(need, tlog.StoredHashIndex(0, size-1))
		}
		if len(need) > 0 {
			got, err := c.Store.ReadHashes(ctx, k, need)
			if err != nil {
				return added, err
			}
			for i, x := range need {
				pending[x] = got[i]
			}
		}
		r := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(indexes))
			for i, x := range indexes {
				h, ok := pending[x]
				if !ok {
					return nil, fmt.Errorf("audit: checkpointer: tree hash %d not loaded", x)
				}
				out[i] = h
			}
			return out, nil
		})
		var hashes []tlog.Hash
		n := size
		var prev chain.Hash
		var scanErr error
		err := c.Store.Scan(ctx, driver.ScanParams{Key: k, From: size, To: end, WithPayload: false}, func(e *driver.LogEntry) error {
			if e.Pos != n {
				return fmt.Errorf("%w: chain_pos %d missing", ErrHistoryMismatch, n)
			}
			link, err := chain.HashFromBytes(e.Link)
			if err != nil {
				return fmt.Errorf("%w: chain_pos %d: %v", ErrHistoryMismatch, n, err)
			}
			ph, _ := chain.HashFromBytes(e.PayloadHash)
			var pl chain.Hash
			if e.PrevLink != nil {
				if pl, err = chain.HashFromBytes(e.PrevLink); err != nil {
					return fmt.Errorf("%w: chain_pos %d: %v", ErrHistoryMismatch, n, err)
				}
			}
			if want, err := chain.Link(pl, e.JobID, string(e.THLC), ph); err != nil || want != link {
				return fmt.Errorf("%w: chain_pos %d (job %s): link does not recompute", ErrHistoryMismatch, n, e.JobID)
			}
			switch {
			case n == 0 && e.PrevLink != nil:
				return fmt.Errorf("%w: the genesis entry has a prev_link", ErrHistoryMismatch)
			case n > 0 && e.PrevLink == nil:
				return fmt.Errorf("%w: chain_pos %d has no prev_link", ErrHistoryMismatch, n)
			case n > size && pl != prev:
				return fmt.Errorf("%w: chain_pos %d does not follow chain_pos %d", ErrHistoryMismatch, n, n-1)
			case n == size && n > 0:
				// The first new entry must follow the last hashed leaf.
				hs, err := r.ReadHashes([]int64{tlog.StoredHashIndex(0, n-1)})
				if err != nil {
					scanErr = err
					return err
				}
				if LeafHash(pl) != hs[0] {
					return fmt.Errorf("%w: chain_pos %d (job %s) does not follow the entry hashed at chain_pos %d", ErrHistoryMismatch, n, e.JobID, n-1)
				}
			}
			hs, err := tlog.StoredHashesForRecordHash(n, LeafHash(link), r)
			if err != nil {
				scanErr = err
				return err
			}
			first := tlog.StoredHashCount(n)
			for i, h := range hs {
				pending[first+int64(i)] = h
			}
			hashes = append(hashes, hs...)
			prev = link
			n++
			return nil
		})
		if scanErr != nil {
			return added, scanErr
		}
		if err != nil && !errors.Is(err, ErrHistoryMismatch) {
			return added, err
		}
		if n > size {
			if aerr := c.Store.AppendHashes(ctx, driver.AppendHashesParams{Key: k, OldSize: size, NewSize: n, Hashes: hashes}); aerr != nil {
				return added, aerr
			}
			added += n - size
		}
		if err != nil {
			return added, err
		}
		if n < end { // fewer entries than the head said: stop here
			return added, nil
		}
		size = n
	}
	return added, nil
}

// treeHashReader reads chain k's stored hashes straight from the store.
func treeHashReader(ctx context.Context, s driver.AuditStore, k chain.Key) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return s.ReadHashes(ctx, k, indexes)
	})
}
