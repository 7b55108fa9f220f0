// Package chain defines the bytes that make ordo's job log tamper-evident:
// the canonical form and hash of a job payload, the deterministic job id, and
// the link that ties each log entry to the one before it in its
// (tenant_id, partition_key) chain.
//
// The package exists because every writer and every verifier of the log,
// including third-party verifiers written in other languages, must produce the
// very same bytes. docs/chain-spec.md is the normative specification and this
// package is its reference implementation; docs/chain-test-vectors.json holds
// vectors checked by both this package and an independent Node.js
// implementation (docs/verify-chain-vectors.mjs). Changing any rule here
// changes every job id and link ever computed, so the rules are frozen.
//
// The package does no I/O and keeps no state.
package chain

//go:generate go run ./internal/genvectors -o ../docs/chain-test-vectors.json

import (
	"cmp"
	"encoding/hex"
	"fmt"
)

// Hash is a SHA-256 digest: a payload hash or a chain link.
// Its zero value stands for "no predecessor" in a genesis entry's PrevLink,
// which is stored as NULL rather than as 32 zero bytes.
type Hash [32]byte

// String returns the digest as 64 lowercase hex characters, the form used in
// the specification, the test vectors and exports.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes, that is, the genesis predecessor.
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses 64 hex characters (either case) into a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return Hash{}, fmt.Errorf("chain: hash %q: want %d hex characters, got %d", truncate(s), 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("chain: hash %q: %w", truncate(s), err)
	}
	return h, nil
}

// HashFromBytes converts a stored 32-byte value (a PostgreSQL bytea or SQLite
// blob) into a Hash. It refuses any other length so that a truncated or
// padded column cannot be mistaken for a digest.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return Hash{}, fmt.Errorf("chain: hash must be %d bytes, got %d", len(h), len(b))
	}
	copy(h[:], b)
	return h, nil
}

// truncate bounds how much of a caller's input is echoed into an error
// message, since such messages end up in logs.
func truncate(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// Key identifies one chain: every entry of a (tenant, partition) pair is
// linked to the one before it, and chains of different keys never link.
type Key struct{ TenantID, PartitionKey string }

// Compare orders keys by tenant, then partition (-1, 0 or +1): the order
// in which writers lock chain heads, so that concurrent batches cannot
// deadlock.
func (k Key) Compare(o Key) int {
	return cmp.Or(cmp.Compare(k.TenantID, o.TenantID), cmp.Compare(k.PartitionKey, o.PartitionKey))
}
