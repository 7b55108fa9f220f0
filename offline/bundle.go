// Package offline moves jobs enqueued on a node cut off from the central
// database into the central chains: Export writes a node's chain entries
// as a bundle (a file, optionally DSSE-signed), Import verifies bundles
// and merges their entries (queue.Import).
//
// Invariants:
//   - A bundle is refused whole, nothing written, when any entry fails
//     its checks (payload hash, job id, link, its predecessor where the
//     bundle holds it, increasing t_hlc) or its signature does not verify;
//     the error names the bundle, the chain and the first bad entry.
//     Import's Force takes, of a chain with a bad entry, only the entries
//     before it, and says so; it never overrides a bad signature.
//   - The same set of bundles merged into the same central chains gives
//     the same central entries, byte for byte, whatever the order of the
//     bundles and whichever node imports (queue.Import's order), and an
//     import run twice adds nothing.
//   - Every merged entry keeps its source node, t_hlc, prev_link and link,
//     so the offline chain can be checked against the central one.
package offline

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Format names the bundle format; a bundle of another format is refused.
const Format = "ordo-bundle/1"

// PayloadType is the DSSE payload type of a signed bundle.
const PayloadType = "application/vnd.ordo.bundle+json"

// Bundle is what `ordo jobs export` writes: some entries of the chains of
// one tenant, with the jobs as they were enqueued.
type Bundle struct {
	Format     string    `json:"format"`
	Tenant     string    `json:"tenant"`
	Node       string    `json:"node,omitempty"`  // only this node's entries, when set
	After      string    `json:"after,omitempty"` // only entries after this t_hlc, when set
	ExportedAt time.Time `json:"exported_at"`
	Chains     []Chain   `json:"chains"`
}

// Chain is one chain's entries in a bundle, in chain order, with its
// latest signed checkpoint when the exporting node had one.
type Chain struct {
	Partition  string  `json:"partition"`
	Entries    []Entry `json:"entries"`
	Checkpoint string  `json:"checkpoint,omitempty"`
}

// Entry is one log entry and its job. Hashes are lowercase hex.
type Entry struct {
	Pos            int64           `json:"chain_pos"`
	THLC           string          `json:"t_hlc"`
	Node           string          `json:"node_id"`
	JobID          uuid.UUID       `json:"job_id"`
	Kind           string          `json:"kind"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Payload        json.RawMessage `json:"payload"`
	PayloadHash    string          `json:"payload_hash"`
	PrevLink       *string         `json:"prev_link"` // null for a chain's genesis
	Link           string          `json:"link"`
	Priority       int             `json:"priority"`
	MaxAttempts    int             `json:"max_attempts"`
	RunAt          time.Time       `json:"run_at"`
	CreatedAt      time.Time       `json:"created_at"`
}

// EntryError is a bundle entry that failed its checks.
type EntryError struct {
	Bundle    string // the bundle's name (its file), when known
	Partition string
	Pos       int64
	THLC      string
	JobID     uuid.UUID
	Reason    string
}

func (e *EntryError) Error() string {
	where := ""
	if e.Bundle != "" {
		where = e.Bundle + ": "
	}
	return fmt.Sprintf("%schain %q, entry %d (t_hlc %s, job %s): %s", where, e.Partition, e.Pos, e.THLC, e.JobID, e.Reason)
}

// ErrSignature is wrapped by every signature failure of a bundle.
var ErrSignature = errors.New("offline: bundle signature")
