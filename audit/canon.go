package audit

import (
	"crypto/sha256"

	"github.com/ordo-sched/ordo/chain"
)

// payloadHashMatches reports whether payload canonicalizes to bytes whose
// SHA-256 is want, and the reference's error when the stored payload is
// not acceptable JSON at all.
func payloadHashMatches(c *chain.Canonicalizer, payload []byte, want chain.Hash) (bool, error) {
	// Stored payloads are normally the canonical bytes themselves.
	if sha256.Sum256(payload) == want {
		return true, nil
	}
	canon, err := c.Canonicalize(payload)
	if err != nil {
		return false, err
	}
	return sha256.Sum256(canon) == want, nil
}
