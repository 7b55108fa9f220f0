package audit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Witnesses (C2SP tlog-witness, tlog-cosignature).
//
// Invariants:
//   - A cosignature is stored only after it verified, with the witness's
//     configured key (torchwood's cosignature/v1 verifier), over the very
//     note ordo signed; served checkpoints are that note with the stored
//     cosignatures appended as extra signature lines, so a checkpoint
//     without cosignatures reads exactly as before.
//   - A witness only ever sees a checkpoint ordo signed, with a consistency
//     proof cut from the stored tree from the size that witness last
//     cosigned: a witness that refuses it (422, its proof fails) has caught
//     a rewritten history, which is reported as such (WitnessInconsistent),
//     never retried into acceptance.
//   - Witnesses never hold up the log: each request is bounded by
//     WitnessRequestTimeout, all of a round's submissions by
//     WitnessRoundTimeout, and a failure is logged and counted, never
//     returned as the round's error.
//   - C2SP requires the log's verifier key name to equal the checkpoint
//     origin; ordo's node key has the node's name. With witnesses
//     configured, the checkpointer signs each checkpoint twice with the same
//     private key: once under the node key's name (what `ordo verify --key`
//     checks, as before) and once under a key named by the origin
//     (OriginVerifierKey, what witnessctl add-key registers).

// Timeouts of witness submissions.
const (
	// WitnessRequestTimeout bounds one add-checkpoint request, connecting
	// and reading the answer included.
	WitnessRequestTimeout = 10 * time.Second
	// WitnessRoundTimeout bounds all the submissions of one checkpointer
	// round, whatever the number of chains and witnesses.
	WitnessRoundTimeout = 30 * time.Second
	// maxWitnessResponse bounds what is read of a witness's answer: a
	// few signature lines, or an error message.
	maxWitnessResponse = 64 << 10
)

// Results of a submission, the result label of
// ordo_witness_submissions_total.
const (
	WitnessCosigned     = "cosigned"     // a verified cosignature was stored
	WitnessInconsistent = "inconsistent" // 422: the consistency proof failed, history was rewritten
	WitnessConflict     = "conflict"     // 409 again after retrying from the witness's size
	WitnessRefused      = "refused"      // 403 or another 4xx: unknown log, key not registered, bad request
	WitnessUnreachable  = "unreachable"  // no answer, a timeout or a 5xx
	WitnessBadResponse  = "bad_response" // an answer that is not a valid cosignature by the witness's key
	WitnessError        = "error"        // ordo could not build the request or store the answer
)

// WitnessResults lists every result, for metrics that show zeros.
var WitnessResults = []string{WitnessCosigned, WitnessInconsistent, WitnessConflict, WitnessRefused, WitnessUnreachable, WitnessBadResponse, WitnessError}

// algCosignatureV1 is the signed-note key type of C2SP tlog-cosignature
// cosignature/v1 keys.
const algCosignatureV1 = 4

// WitnessKey is a witness's verifier key, in the vkey form C2SP
// signed-note and tlog-cosignature use: <name>+<hash>+<base64(0x04 ||
// 32-byte Ed25519 public key)>, as litewitness prints it.
type WitnessKey struct {
	text     string
	name     string
	hash     uint32
	verifier note.Verifier
}

// ParseWitnessKey reads a witness's cosignature/v1 verifier key.
func ParseWitnessKey(text string) (*WitnessKey, error) {
	text = strings.TrimSpace(text)
	parts := strings.SplitN(text, "+", 3)
	if len(parts) != 3 || parts[0] == "" {
		return nil, fmt.Errorf("audit: witness key %q: want <name>+<hash>+<base64 key>", text)
	}
	hash, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return nil, fmt.Errorf("audit: witness key %q: the key hash must be 8 hex digits", text)
	}
	key, err := decodeCanonical(parts[2])
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algCosignatureV1 {
		return nil, fmt.Errorf("audit: witness key %q: not a cosignature/v1 key (want base64 of 0x04 and a 32-byte Ed25519 key)", text)
	}
	// torchwood builds its cosignature verifier from a signer; one that
	// only knows the public key never signs.
	s, err := torchwood.NewCosignatureSigner(parts[0], publicOnly(key[1:]))
	if err != nil {
		return nil, fmt.Errorf("audit: witness key %q: %w", text, err)
	}
	v := s.Verifier()
	if v.KeyHash() != uint32(hash) {
		return nil, fmt.Errorf("audit: witness key %q: its hash does not match its name and key", text)
	}
	return &WitnessKey{text: text, name: parts[0], hash: uint32(hash), verifier: v}, nil
}

// publicOnly is a crypto.Signer that has a public key and cannot sign.
type publicOnly ed25519.PublicKey

func (p publicOnly) Public() crypto.PublicKey { return ed25519.PublicKey(p) }
func (publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("audit: a witness's verifier key cannot sign")
}

// Name returns the witness's name (the key name).
func (k *WitnessKey) Name() string { return k.name }

// KeyID returns <name>+<hash>.
func (k *WitnessKey) KeyID() string { return keyID(k.name, k.hash) }

// String returns the key's vkey text.
func (k *WitnessKey) String() string { return k.text }

// Witness is a witness the checkpointer submits checkpoints to.
type Witness struct {
	URL string // the witness's prefix: requests go to URL + "/add-checkpoint"
	Key *WitnessKey
}

// WitnessObserver counts submissions (ordo_witness_submissions_total).
type WitnessObserver func(witness, result string)

// originSigner signs notes with a node's private key under a key named by
// a checkpoint origin (see the package invariants).
type originSigner struct {
	name string
	hash uint32
	priv ed25519.PrivateKey
}

func (s originSigner) Name() string    { return s.name }
func (s originSigner) KeyHash() uint32 { return s.hash }
func (s originSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(s.priv, msg), nil
}

// ed25519KeyHash is the signed-note key hash of an Ed25519 key named name.
func ed25519KeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// OriginSigner returns a signer of k's private key named origin.
func (k *PrivateKey) OriginSigner(origin string) note.Signer {
	pub := k.priv.Public().(ed25519.PublicKey)
	return originSigner{name: origin, hash: ed25519KeyHash(origin, pub), priv: k.priv}
}

// OriginVerifierKey returns the verifier key (vkey) of k's key under the
// name origin: what a witness registers for the log of that origin
// (`witnessctl add-key -origin ORIGIN -key VKEY`).
func (k *PublicKey) OriginVerifierKey(origin string) (string, error) {
	v, err := note.NewEd25519VerifierKey(origin, k.pub)
	if err != nil {
		return "", fmt.Errorf("audit: verifier key for origin %q: %w", origin, err)
	}
	return v, nil
}

// SignCheckpointForWitnesses signs body with key under its own name and
// under a name equal to the origin (see the package invariants).
func SignCheckpointForWitnesses(body CheckpointBody, key *PrivateKey) ([]byte, error) {
	return note.Sign(&note.Note{Text: body.Text()}, key.NoteSigner(), key.OriginSigner(body.Origin))
}

// AppendCosignatures returns the signed note msg with the signature lines
// appended (each without its newline), skipping any msg already carries.
func AppendCosignatures(msg []byte, lines []string) []byte {
	out := bytes.Clone(msg)
	for _, l := range lines {
		if l == "" || bytes.Contains(msg, []byte("\n"+l+"\n")) {
			continue
		}
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

// WithCosignatures returns cp's note with the stored cosignatures of its
// tree size appended; store may be nil (none). The size is the one the
// note signs, not the column beside it.
func WithCosignatures(ctx context.Context, store driver.CosignatureStore, cp driver.Checkpoint) ([]byte, error) {
	if store == nil {
		return cp.Note, nil
	}
	size := cp.Size
	if b, _, err := OpenCheckpoint(cp.Note, nil); err == nil {
		size = b.Size
	}
	cs, err := store.Cosignatures(ctx, cp.Key, size)
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(cs))
	for i, c := range cs {
		lines[i] = c.SignatureLine
	}
	return AppendCosignatures(cp.Note, lines), nil
}

// CosignatureStoreOf returns s's cosignature store, or nil when it has
// none.
func CosignatureStoreOf(s driver.AuditStore) driver.CosignatureStore {
	cs, _ := s.(driver.CosignatureStore)
	return cs
}

// CountCosignatures returns how many of keys validly cosigned the signed
// note msg (each key counted once), and a problem per key that did not.
func CountCosignatures(msg []byte, keys []*WitnessKey) (int, []string) {
	valid := 0
	var problems []string
	for _, k := range keys {
		if _, err := cosignatureLine(msg, k); err != nil {
			problems = append(problems, fmt.Sprintf("witness %s: %v", k.KeyID(), err))
			continue
		}
		valid++
	}
	return valid, problems
}

// cosignatureLine returns the signature line by which k validly cosigned
// msg.
func cosignatureLine(msg []byte, k *WitnessKey) (string, error) {
	n, err := note.Open(msg, note.VerifierList(k.verifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return "", errors.New("no cosignature by this key")
		}
		return "", fmt.Errorf("cosignature does not verify: %v", err)
	}
	for _, s := range n.Sigs {
		if s.Name == k.name && s.Hash == k.hash {
			return "\u2014 " + s.Name + " " + s.Base64, nil
		}
	}
	return "", errors.New("no cosignature by this key")
}

// witnessSubmission is one add-checkpoint exchange's outcome.
type witnessSubmission struct {
	result string
	line   string // the verified cosignature line, when cosigned
	err    error
}

// submitToWitness submits chain k's checkpoint msg (of body) to w per C2SP
// tlog-witness, from the size w last cosigned (retrying once from the size
// a 409 names), and stores the verified cosignature.
func (c *Checkpointer) submitToWitness(ctx context.Context, w *Witness, k chain.Key, body CheckpointBody, msg []byte) witnessSubmission {
	old := int64(0)
	if c.Cosignatures != nil {
		n, err := c.Cosignatures.WitnessedSize(ctx, k, w.Key.KeyID())
		if err != nil {
			return witnessSubmission{result: WitnessError, err: err}
		}
		old = n
	}
	for attempt := 0; ; attempt++ {
		if old > body.Size {
			// The witness holds a larger tree than ordo signed: a
			// truncated history, as far as it can tell.
			return witnessSubmission{result: WitnessInconsistent, err: fmt.Errorf("the witness cosigned size %d, ordo signed only %d: the history was truncated or rewritten", old, body.Size)}
		}
		var proof tlog.TreeProof
		if old > 0 && old < body.Size {
			var err error
			if proof, err = tlog.ProveTree(body.Size, old, c.reader(ctx, k, nil)); err != nil {
				return witnessSubmission{result: WitnessError, err: fmt.Errorf("consistency proof from size %d: %w", old, err)}
			}
		}
		status, answer, err := postAddCheckpoint(ctx, w.URL, old, proof, msg)
		if err != nil {
			return witnessSubmission{result: WitnessUnreachable, err: err}
		}
		switch {
		case status == http.StatusOK:
			line, err := cosignatureLine(AppendCosignatures(msg, strings.Split(strings.TrimSuffix(string(answer), "\n"), "\n")), w.Key)
			if err != nil {
				return witnessSubmission{result: WitnessBadResponse, err: fmt.Errorf("the answer is not a valid cosignature of key %s: %v", w.Key.KeyID(), err)}
			}
			if c.Cosignatures != nil {
				err = c.Cosignatures.InsertCosignature(ctx, &driver.Cosignature{Key: k, Size: body.Size, WitnessKeyID: w.Key.KeyID(), SignatureLine: line, CreatedAt: c.now()})
				if err != nil {
					return witnessSubmission{result: WitnessError, line: line, err: fmt.Errorf("storing the cosignature: %w", err)}
				}
			}
			return witnessSubmission{result: WitnessCosigned, line: line}
		case status == http.StatusConflict && attempt == 0:
			n, err := strconv.ParseInt(strings.TrimSpace(string(answer)), 10, 64)
			if err != nil || n < 0 {
				return witnessSubmission{result: WitnessBadResponse, err: fmt.Errorf("409 Conflict without a tree size: %q", answer)}
			}
			old = n
		case status == http.StatusConflict:
			return witnessSubmission{result: WitnessConflict, err: fmt.Errorf("409 Conflict again: the witness is at size %s", strings.TrimSpace(string(answer)))}
		case status == http.StatusUnprocessableEntity:
			return witnessSubmission{result: WitnessInconsistent, err: fmt.Errorf("the witness refused the consistency proof from size %d to %d (%s): ordo's history is not the one it witnessed", old, body.Size, strings.TrimSpace(string(answer)))}
		case status >= 500:
			return witnessSubmission{result: WitnessUnreachable, err: fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(answer)))}
		default:
			return witnessSubmission{result: WitnessRefused, err: fmt.Errorf("HTTP %d: %s", status, strings.TrimSpace(string(answer)))}
		}
	}
}

// witnessHTTP has no timeout of its own: every request carries a context
// bounded by WitnessRequestTimeout.
var witnessHTTP = &http.Client{}

func postAddCheckpoint(ctx context.Context, url string, old int64, proof tlog.TreeProof, msg []byte) (int, []byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(msg)
	ctx, cancel := context.WithTimeout(ctx, WitnessRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(url, "/")+"/add-checkpoint", &b)
	if err != nil {
		return 0, nil, err
	}
	resp, err := witnessHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessResponse))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, answer, nil
}

// witnessRound submits the checkpoints signed this round, and those of
// chains a witness has not cosigned yet (c.unwitnessed), to every witness,
// one goroutine per witness, within WitnessRoundTimeout.
func (c *Checkpointer) witnessRound(ctx context.Context, signed []signedCheckpoint) {
	if len(c.Witnesses) == 0 {
		return
	}
	c.witnessMu.Lock()
	defer c.witnessMu.Unlock()
	if c.unwitnessed == nil {
		c.unwitnessed = map[*Witness]map[chain.Key]signedCheckpoint{}
	}
	for _, w := range c.Witnesses {
		if c.unwitnessed[w] == nil {
			c.unwitnessed[w] = map[chain.Key]signedCheckpoint{}
		}
		for _, s := range signed {
			c.unwitnessed[w][s.key] = s
		}
	}
	ctx, cancel := context.WithTimeout(ctx, WitnessRoundTimeout)
	defer cancel()
	done := make(chan struct{})
	for _, w := range c.Witnesses {
		pending := c.unwitnessed[w]
		go func() {
			defer func() { done <- struct{}{} }()
			for k, s := range pending {
				if ctx.Err() != nil {
					return
				}
				res := c.submitToWitness(ctx, w, k, s.body, s.note)
				if c.WitnessObserver != nil {
					c.WitnessObserver(w.URL, res.result)
				}
				attrs := []any{"witness", w.URL, "witness_key", w.Key.KeyID(), "origin", s.body.Origin, "size", s.body.Size, "result", res.result}
				switch res.result {
				case WitnessCosigned:
					delete(pending, k)
					c.log().Debug("audit: checkpoint cosigned", attrs...)
				case WitnessInconsistent:
					// Retrying cannot help: the witness holds another
					// history. The chain stays in the logs and the metric.
					delete(pending, k)
					c.log().Error("audit: the witness refused the checkpoint: its consistency proof fails, the history was rewritten", append(attrs, "error", res.err)...)
				default:
					c.log().Error("audit: witness submission failed; retried next round", append(attrs, "error", res.err)...)
				}
			}
		}()
	}
	for range c.Witnesses {
		<-done
	}
}

// signedCheckpoint is a checkpoint signed in a round, for the witnesses.
type signedCheckpoint struct {
	key  chain.Key
	body CheckpointBody
	note []byte
}
