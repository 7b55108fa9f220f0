package drivertest

import (
	"crypto/sha256"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// entry is one scheduler_log row as stored.
type entry struct {
	Key         chain.Key
	Pos         int64
	JobID       uuid.UUID
	THLC        string
	PayloadHash []byte
	PrevLink    []byte // nil for NULL
	Link        []byte
	CreatedAt   int64 // Unix ms
	Payload     string
	Node        string
}

// readLog reads every log entry, grouped by chain, each chain in chain_pos
// order.
func (h *harness) readLog() map[chain.Key][]entry {
	h.t.Helper()
	rs, err := h.tg.DB.QueryContext(h.ctx, h.sql(`SELECT tenant_id, partition_key, chain_pos, CAST(job_id AS TEXT), t_hlc,
		payload_hash, prev_link, link, created_at, CAST(payload AS TEXT), node_id
		FROM {scheduler_log} ORDER BY tenant_id, partition_key, chain_pos`))
	if err != nil {
		h.t.Fatalf("reading scheduler_log: %v", err)
	}
	defer rs.Close()
	out := map[chain.Key][]entry{}
	for rs.Next() {
		var e entry
		var id string
		var created any
		if err := rs.Scan(&e.Key.TenantID, &e.Key.PartitionKey, &e.Pos, &id, &e.THLC, &e.PayloadHash, &e.PrevLink, &e.Link,
			&created, &e.Payload, &e.Node); err != nil {
			h.t.Fatalf("reading scheduler_log: %v", err)
		}
		if e.JobID, err = uuid.Parse(id); err != nil {
			h.t.Fatalf("scheduler_log job_id %q: %v", id, err)
		}
		e.CreatedAt = millis(h.t, created)
		out[e.Key] = append(out[e.Key], e)
	}
	if err := rs.Err(); err != nil {
		h.t.Fatalf("reading scheduler_log: %v", err)
	}
	return out
}

// byJob indexes a log by job id.
func byJob(log map[chain.Key][]entry) map[uuid.UUID]entry {
	out := map[uuid.UUID]entry{}
	for _, es := range log {
		for _, e := range es {
			out[e.JobID] = e
		}
	}
	return out
}

// verifyChains re-links every chain from genesis and checks its head: what
// an auditor does with the log alone. It reports every problem as a test
// error and returns the log.
func (h *harness) verifyChains() map[chain.Key][]entry {
	h.t.Helper()
	t := h.t
	log := h.readLog()
	seen := map[uuid.UUID]chain.Key{}
	for k, es := range log {
		var prevLink []byte
		var prevT hlc.Timestamp
		for i, e := range es {
			if e.Pos != int64(i) {
				t.Errorf("chain %s/%q: entry %d has chain_pos %d (positions must be 0, 1, 2, ...)", k.TenantID, k.PartitionKey, i, e.Pos)
				break
			}
			if other, dup := seen[e.JobID]; dup {
				t.Errorf("job %s appears twice in the log (chains %v and %v)", e.JobID, other, k)
			}
			seen[e.JobID] = k
			ts, err := hlc.Parse(e.THLC)
			if err != nil {
				t.Errorf("chain %s/%q pos %d: t_hlc %q does not parse: %v", k.TenantID, k.PartitionKey, e.Pos, e.THLC, err)
			} else {
				if i > 0 && !ts.After(prevT) {
					t.Errorf("chain %s/%q pos %d: t_hlc %s is not after the previous entry's %s", k.TenantID, k.PartitionKey, e.Pos, e.THLC, prevT)
				}
				if ts.Node != e.Node {
					t.Errorf("chain %s/%q pos %d: node_id %q but t_hlc %s names node %q", k.TenantID, k.PartitionKey, e.Pos, e.Node, e.THLC, ts.Node)
				}
				prevT = ts
			}
			if i == 0 && e.PrevLink != nil {
				t.Errorf("chain %s/%q: genesis entry has prev_link %x, want NULL", k.TenantID, k.PartitionKey, e.PrevLink)
			}
			if i > 0 && string(e.PrevLink) != string(prevLink) {
				t.Errorf("chain %s/%q pos %d: prev_link %x is not the previous link %x", k.TenantID, k.PartitionKey, e.Pos, e.PrevLink, prevLink)
			}
			ph, err := chain.PayloadHash([]byte(e.Payload))
			if err != nil || string(ph[:]) != string(e.PayloadHash) {
				t.Errorf("chain %s/%q pos %d: payload %s hashes to %x, payload_hash is %x (%v)", k.TenantID, k.PartitionKey, e.Pos, e.Payload, ph, e.PayloadHash, err)
			}
			var prev, phash chain.Hash
			copy(prev[:], e.PrevLink)
			copy(phash[:], e.PayloadHash)
			want, err := chain.Link(prev, e.JobID, e.THLC, phash)
			if err != nil || string(want[:]) != string(e.Link) {
				t.Errorf("chain %s/%q pos %d (job %s): link %x, recomputed %x (%v)", k.TenantID, k.PartitionKey, e.Pos, e.JobID, e.Link, want, err)
			}
			prevLink = e.Link
		}
	}
	// Heads: one per chain, naming one of its entries.
	rs, err := h.tg.DB.QueryContext(h.ctx, h.sql(`SELECT tenant_id, partition_key, last_link, last_t_hlc, entry_count FROM {chain_heads}`))
	if err != nil {
		t.Fatalf("reading chain_heads: %v", err)
	}
	defer rs.Close()
	heads := 0
	for rs.Next() {
		var k chain.Key
		var link []byte
		var last string
		var n int64
		if err := rs.Scan(&k.TenantID, &k.PartitionKey, &link, &last, &n); err != nil {
			t.Fatalf("reading chain_heads: %v", err)
		}
		heads++
		es := log[k]
		if len(es) == 0 {
			t.Errorf("chain head %s/%q has no entries in the log", k.TenantID, k.PartitionKey)
			continue
		}
		// A cache (driver.AuditStore.Head): the last entry, or on a
		// backend that refreshes it lazily an earlier one, never a later.
		if n < 1 || n > int64(len(es)) {
			t.Errorf("chain head %s/%q has count %d; the chain has %d entries", k.TenantID, k.PartitionKey, n, len(es))
			continue
		}
		named := es[n-1]
		if string(link) != string(named.Link) || last != named.THLC {
			t.Errorf("chain head %s/%q = (link %x, t_hlc %s, count %d), entry %d = (link %x, t_hlc %s)",
				k.TenantID, k.PartitionKey, link, last, n, n-1, named.Link, named.THLC)
		}
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if heads != len(log) {
		t.Errorf("%d chain heads for %d chains", heads, len(log))
	}
	return log
}

// checkResult checks an enqueue result against the stored entry.
func (h *harness) checkResult(r queue.EnqueueResult, e entry, ok bool) {
	h.t.Helper()
	if !ok {
		h.t.Errorf("job %s: no log entry", r.JobID)
		return
	}
	if r.THLC != e.THLC || string(r.Link[:]) != string(e.Link) {
		h.t.Errorf("job %s: result (t_hlc %s, link %x), stored (t_hlc %s, link %x)", r.JobID, r.THLC, r.Link, e.THLC, e.Link)
	}
}

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
