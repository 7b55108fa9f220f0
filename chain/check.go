package chain

import (
	"bytes"
	"crypto/sha256"

	"github.com/google/uuid"
)

// Faults is a set of the ways a stored log entry can break the chain
// (docs/chain-spec.md, "Verification"). The two checks below are the only
// statement of those rules: VerifyOnDequeue stops at the first fault, the
// verifier reports every one, and neither allocates on an entry that
// verifies.
type Faults uint8

const (
	// FaultPayloadHash: the stored payload is not JSON, or its canonical
	// form does not hash to payload_hash.
	FaultPayloadHash Faults = 1 << iota
	// FaultLink: link is not SHA-256(prev_link || job_id || t_hlc ||
	// payload_hash), or t_hlc is too short or long to be linked.
	FaultLink
	// FaultGenesis: the first entry of a chain has a prev_link, or an
	// entry after the first has none (a second genesis).
	FaultGenesis
	// FaultPredecessor: prev_link is not the link of the entry before, or
	// there is no entry before.
	FaultPredecessor
	// FaultTHLCOrder: t_hlc is not after the previous entry's.
	FaultTHLCOrder
)

// Has reports whether f holds every fault of g.
func (f Faults) Has(g Faults) bool { return f&g == g }

// Stored is a log entry as stored, for checking. PrevNull says prev_link
// is NULL (a genesis entry); PrevLink is then zero.
type Stored struct {
	JobID       uuid.UUID
	THLC        []byte
	PayloadHash Hash
	PrevLink    Hash
	PrevNull    bool
	Link        Hash
}

// Previous is what CheckSuccession needs of the entry before: whether it
// exists, its link and its t_hlc.
type Previous struct {
	Exists bool
	Link   Hash
	THLC   []byte
}

// CheckEntry checks what an entry proves on its own: that payload (the
// stored payload) hashes to s.PayloadHash, and that s.Link is the link of
// its fields. The error, when not nil, says why the payload is not JSON
// (FaultPayloadHash is then set). c's buffer is reused, so a verifier
// checking many entries keeps one Canonicalizer.
func (c *Canonicalizer) CheckEntry(s *Stored, payload []byte) (Faults, error) {
	var f Faults
	var jsonErr error
	// Stored payloads are normally the canonical bytes themselves.
	if sha256.Sum256(payload) != s.PayloadHash {
		canon, err := c.Canonicalize(payload)
		if err != nil || sha256.Sum256(canon) != s.PayloadHash {
			f, jsonErr = FaultPayloadHash, err
		}
	}
	if link, ok := linkOf(s.PrevLink, s.JobID, s.THLC, s.PayloadHash); !ok || link != s.Link {
		f |= FaultLink
	}
	return f, jsonErr
}

// CheckEntry is Canonicalizer.CheckEntry with a pooled Canonicalizer.
func CheckEntry(s *Stored, payload []byte) (Faults, error) {
	c := canonicalizers.Get().(*Canonicalizer)
	defer canonicalizers.Put(c)
	return c.CheckEntry(s, payload)
}

// CheckSuccession checks an entry against the one before it in its chain;
// first says the entry is at chain_pos 0.
func CheckSuccession(s *Stored, first bool, prev Previous) Faults {
	if first {
		if !s.PrevNull {
			return FaultGenesis
		}
		return 0
	}
	var f Faults
	switch {
	case s.PrevNull:
		f = FaultGenesis
	case !prev.Exists, s.PrevLink != prev.Link:
		f = FaultPredecessor
	}
	if prev.Exists && bytes.Compare(s.THLC, prev.THLC) <= 0 {
		f |= FaultTHLCOrder
	}
	return f
}

// linkOf is Link on t_hlc bytes, without the error: ok is false for a
// t_hlc that cannot be linked (empty, or longer than 85 bytes).
func linkOf(prev Hash, jobID uuid.UUID, tHLC []byte, payloadHash Hash) (link Hash, ok bool) {
	if len(tHLC) == 0 || len(tHLC) > maxTHLCLen {
		return Hash{}, false
	}
	var buf [linkInputMax]byte
	n := copy(buf[:], prev[:])
	n += copy(buf[n:], jobID[:])
	n += copy(buf[n:], tHLC)
	n += copy(buf[n:], payloadHash[:])
	return sha256.Sum256(buf[:n]), true
}
