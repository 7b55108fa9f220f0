package drivertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"golang.org/x/mod/sumdb/tlog"
)

func auditCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

// setup builds a chain of 20 entries, checkpoints it (returning the signed
// checkpoint an auditor would keep) and snapshots all of it, and checks
// that everything verifies before the tampering.
func (h *auditHarness) setup() ([]row, []byte) {
	h.t.Helper()
	rs := h.build(20)
	if len(rs) != 20 {
		h.t.Fatalf("chain has %d entries, want 20", len(rs))
	}
	// chain_heads as a refreshed cache has it: on the last entry. (A lazy
	// backend's row may still name an earlier one, and the tampering
	// below may change that entry.)
	h.exec(`UPDATE {chain_heads} SET last_link = ?, last_t_hlc = ?, entry_count = 20 WHERE tenant_id = ? AND partition_key = ?`,
		rs[19].Link[:], rs[19].THLC, Chain.TenantID, Chain.PartitionKey)
	note := h.checkpoint()
	if _, err := h.snap.Create(h.ctx, Chain, 0, 19); err != nil {
		h.t.Fatal(err)
	}
	mine, _ := h.verify(audit.Verifier{Key: h.pub, Checkpoints: [][]byte{note}})
	h.expect(mine)
	if mine.EntriesChecked != 20 || mine.CheckpointsChecked != 2 {
		h.t.Fatalf("before tampering: %d entries and %d checkpoints checked, want 20 and 2", mine.EntriesChecked, mine.CheckpointsChecked)
	}
	h.expectSnapshot(true, "")
	return rs, note
}

func testClean(h *auditHarness) {
	t := h.t
	rs, note := h.setup()
	body, signed, err := audit.OpenCheckpoint(note, h.pub)
	if err != nil || !signed || body.Size != 20 || body.Origin != "ordo/acme/p1" {
		t.Fatalf("checkpoint %q: %+v signed=%v %v", note, body, signed, err)
	}
	if got := auditCounter(h.m.ChainVerifications.WithLabelValues("valid")); got != 2 {
		t.Errorf("scheduler_chain_verifications_total{result=valid} = %v, want 2", got)
	}
	if got := auditCounter(h.m.BatchSnapshots); got != 1 {
		t.Errorf("scheduler_batch_snapshots_created_total = %v, want 1", got)
	}
	// The stored tree reproduces the streamed root.
	var links []chain.Hash
	for _, r := range rs {
		links = append(links, r.Link)
	}
	if audit.RangeRoot(links) != body.Root {
		t.Fatal("the checkpoint's root is not the RFC 6962 root over the chain's links")
	}

	// A job is found, and proved, within its own tenant, and not in another
	// one's: the tenant is part of the query.
	if locs, err := h.store.FindJob(h.ctx, driver.JobRef{TenantID: "globex", JobID: rs[0].JobID}); err != nil || len(locs) != 0 {
		t.Fatalf("FindJob of acme's job as globex: %v, %v; want nothing", locs, err)
	}
	if _, err := audit.ProveInclusion(h.ctx, h.store, driver.JobRef{TenantID: "globex", JobID: rs[0].JobID}); !errors.Is(err, driver.ErrRecordNotFound) {
		t.Fatalf("inclusion proof of acme's job as globex: %v, want ErrRecordNotFound", err)
	}

	// Inclusion of every job, checked offline from the JSON file alone.
	for _, r := range rs {
		p, err := audit.ProveInclusion(h.ctx, h.store, driver.JobRef{TenantID: Chain.TenantID, JobID: r.JobID})
		if err != nil {
			t.Fatal(err)
		}
		file, _ := json.Marshal(p)
		p2, err := audit.ParseProof(file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := audit.CheckProof(p2, h.pub)
		if err != nil || !res.Valid {
			t.Fatalf("inclusion proof of job %s at %d: %+v, %v", r.JobID, r.Pos, res, err)
		}
	}
	// A proof for another entry's data fails.
	p, _ := audit.ProveInclusion(h.ctx, h.store, driver.JobRef{JobID: rs[4].JobID})
	p.Entry.Link = rs[5].Link.String()
	if res, err := audit.CheckProof(p, h.pub); err != nil || res.Valid {
		t.Fatalf("inclusion proof with a foreign link: %+v, %v", res, err)
	}
	p, _ = audit.ProveInclusion(h.ctx, h.store, driver.JobRef{JobID: rs[4].JobID})
	p.Hashes[0] = p.Hashes[1]
	if res, err := audit.CheckProof(p, h.pub); err != nil || res.Valid {
		t.Fatalf("inclusion proof with a wrong hash: %+v, %v", res, err)
	}
	// Another key does not verify.
	otherKey, _, _ := audit.GenerateKey(strings.NewReader(strings.Repeat("x", 32)), "node-a")
	ok2, _ := audit.ParsePrivateKey(otherKey)
	p, _ = audit.ProveInclusion(h.ctx, h.store, driver.JobRef{JobID: rs[4].JobID})
	if res, err := audit.CheckProof(p, ok2.Public()); err != nil || res.Valid {
		t.Fatalf("inclusion proof checked with another key: %+v, %v", res, err)
	}

	// The chain grows; the old checkpoint is a prefix of the new one.
	for i := range 5 {
		if _, err := h.q.Enqueue(h.ctx, queue.Job{TenantID: Chain.TenantID, PartitionKey: Chain.PartitionKey, Kind: "email.send", Payload: []byte(fmt.Sprintf(`{"late":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	newNote := h.checkpoint()
	if b, _, _ := audit.OpenCheckpoint(newNote, h.pub); b.Size != 25 {
		t.Fatalf("new checkpoint size %d, want 25", b.Size)
	}
	for _, from := range []int64{1, 7, 20, 25} {
		p, err := audit.ProveConsistency(h.ctx, h.store, Chain, from, 0)
		if err != nil {
			t.Fatal(err)
		}
		var trusted [][]byte
		if from == 20 {
			trusted = [][]byte{note}
		}
		res, err := audit.CheckProof(p, h.pub, trusted...)
		if err != nil || !res.Valid {
			t.Fatalf("consistency proof %d -> 25: %+v, %v", from, res, err)
		}
	}
	// The auditor's checkpoint of size 20 against a proof from another size.
	p, _ = audit.ProveConsistency(h.ctx, h.store, Chain, 19, 0)
	if res, err := audit.CheckProof(p, h.pub, note); err != nil || res.Valid {
		t.Fatalf("consistency proof from 19 checked against a checkpoint of 20: %+v, %v", res, err)
	}
	mine, _ := h.verify(audit.Verifier{Key: h.pub, Checkpoints: [][]byte{note}})
	h.expect(mine)
}

func testPayload(h *auditHarness) {
	rs, _ := h.setup()
	h.exec(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, `{"to": "mallory@example.com", "n": 5}`, rs[5].JobID.String())
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssuePayloadHashMismatch, 5, rs[5].JobID})
	// The link covers the payload only through payload_hash, which is
	// intact: checkpoint and snapshot still hold, and only the payload
	// check above reveals the change.
	h.expectSnapshot(true, "")
	if got := auditCounter(h.m.ChainVerifications.WithLabelValues("invalid")); got != 1 {
		h.t.Errorf("scheduler_chain_verifications_total{result=invalid} = %v, want 1", got)
	}
	if got := auditCounter(h.m.ChainIssues); got != 1 {
		h.t.Errorf("scheduler_chain_verification_issues_total = %v, want 1", got)
	}
}

func testPayloadHash(h *auditHarness) {
	rs, _ := h.setup()
	h.exec(`UPDATE {scheduler_log} SET payload_hash = ? WHERE job_id = ?`, sha("forged"), rs[5].JobID.String())
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	// Job 5 has no idempotency key, so its id derives from payload_hash.
	h.expect(mine,
		want{audit.IssuePayloadHashMismatch, 5, rs[5].JobID},
		want{audit.IssueLinkMismatch, 5, rs[5].JobID},
		want{audit.IssueJobIDMismatch, 5, rs[5].JobID})
	h.expectSnapshot(false, "does not recompute")
}

func testLink(h *auditHarness) {
	rs, note := h.setup()
	h.exec(`UPDATE {scheduler_log} SET link = ? WHERE job_id = ?`, sha("forged"), rs[5].JobID.String())
	mine, _ := h.verify(audit.Verifier{Key: h.pub, Checkpoints: [][]byte{note}})
	h.expect(mine,
		want{audit.IssueTreeMismatch, -1, uuid.Nil}, // the stored tree was built from the old link
		want{audit.IssueLinkMismatch, 5, rs[5].JobID},
		want{audit.IssueBrokenPredecessor, 6, rs[6].JobID},
		// Both the stored checkpoint and the auditor's no longer match;
		// the stored tree pins the change to entry 5.
		want{audit.IssueCheckpointMismatch, 5, rs[5].JobID},
		want{audit.IssueCheckpointMismatch, 5, rs[5].JobID})
	h.expectSnapshot(false, "")
}

func testDeleteMiddle(h *auditHarness) {
	rs, _ := h.setup()
	if n := h.exec(`DELETE FROM {scheduler_log} WHERE job_id = ?`, rs[5].JobID.String()); n != 1 {
		h.t.Fatalf("deleted %d rows", n)
	}
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine,
		want{audit.IssueTreeMismatch, -1, uuid.Nil},
		want{audit.IssueTruncation, 6, rs[6].JobID},
		want{audit.IssueBrokenPredecessor, 6, rs[6].JobID},
		want{audit.IssueCheckpointMismatch, 5, uuid.Nil})
	h.expectSnapshot(false, "chain_pos 5 missing")
}

func testTruncateTail(h *auditHarness) {
	rs, note := h.setup()
	if n := h.exec(`DELETE FROM {scheduler_log} WHERE tenant_id = ? AND partition_key = ? AND chain_pos >= 17`, Chain.TenantID, Chain.PartitionKey); n != 3 {
		h.t.Fatalf("deleted %d rows", n)
	}
	h.exec(`UPDATE {chain_heads} SET last_link = ?, last_t_hlc = ?, entry_count = 17 WHERE tenant_id = ? AND partition_key = ?`,
		rs[16].Link[:], rs[16].THLC, Chain.TenantID, Chain.PartitionKey)
	// The chain alone cannot tell: it is a valid, shorter chain.
	mine, _ := h.verify(audit.Verifier{NoStoredCheckpoints: true})
	h.expect(mine)
	// A checkpoint can: the stored one, or the auditor's own copy when the
	// stored ones are gone too.
	mine, _ = h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueTruncation, 17, uuid.Nil}, want{audit.IssueTreeMismatch, -1, uuid.Nil}) // the stored tree has 20 leaves
	h.exec(`DELETE FROM {chain_checkpoints}`)
	mine, _ = h.verify(audit.Verifier{Key: h.pub, Checkpoints: [][]byte{note}})
	h.expect(mine, want{audit.IssueTruncation, 17, uuid.Nil}, want{audit.IssueTreeMismatch, -1, uuid.Nil})
	h.expectSnapshot(false, "entries were removed")
}

// Issue 14: the checkpointer does not sign from a changed tree cache. A
// stored hash under the signed tree (the 16-leaf subtree of the 20-entry
// checkpoint) is changed, one job appended: signing the new root would
// sign a tree inconsistent with the checkpoint of 20, so it is refused.
func testCorruptTreeCache(h *auditHarness) {
	rs, _ := h.setup()
	idx := tlog.StoredHashIndex(4, 0)
	if n := h.exec(`UPDATE {chain_tree_hashes} SET hash = ? WHERE tenant_id = ? AND partition_key = ? AND hash_index = ?`,
		bytes.Repeat([]byte{0xab}, 32), Chain.TenantID, Chain.PartitionKey, idx); n != 1 {
		h.t.Fatalf("changed %d stored hashes", n)
	}
	if _, err := h.q.Enqueue(h.ctx, queue.Job{TenantID: Chain.TenantID, PartitionKey: Chain.PartitionKey, Kind: "email.send", Payload: []byte(`{"n":21}`)}); err != nil {
		h.t.Fatal(err)
	}
	res, err := h.cp.RunOnce(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(res.ChainsFailed) != 1 || res.ChainsFailed[0] != Chain {
		h.t.Fatalf("checkpointer over a changed tree cache: %+v; want %v refused", res, Chain)
	}
	if cps, _ := h.store.Checkpoints(h.ctx, Chain, 1); len(cps) != 1 || cps[0].Size != 20 {
		h.t.Fatalf("a checkpoint was signed over the changed cache: %+v", cps)
	}
	// The verifier finds the changed hash too, by recomputing the stored
	// tree from the entries; and a changed leaf hash, which no signed root
	// depends on (it would only break inclusion proofs), just the same
	// (reported first, as the lowest position).
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueTreeMismatch, -1, uuid.Nil})
	if n := h.exec(`UPDATE {chain_tree_hashes} SET hash = ? WHERE tenant_id = ? AND partition_key = ? AND hash_index = ?`,
		bytes.Repeat([]byte{0xef}, 32), Chain.TenantID, Chain.PartitionKey, tlog.StoredHashIndex(0, 0)); n != 1 {
		h.t.Fatalf("changed %d leaf hashes", n)
	}
	mine, _ = h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueTreeMismatch, -1, uuid.Nil})
	// Nor is a proof cut from the damaged tree handed out: entry 1's proof
	// carries leaf 0's hash as its sibling.
	if _, err := audit.ProveInclusion(h.ctx, h.store, driver.JobRef{TenantID: Chain.TenantID, JobID: rs[1].JobID}); err == nil || !strings.Contains(err.Error(), "damaged") {
		h.t.Fatalf("an inclusion proof through a changed leaf hash: %v; want a refusal", err)
	}
}

// Issue 14: a stored checkpoint's root_hash column and a snapshot's
// key_id column, which lists show and nothing signs, must say what the
// signatures say.
func testCheckpointColumns(h *auditHarness) {
	h.setup()
	h.exec(`UPDATE {chain_checkpoints} SET root_hash = ? WHERE tenant_id = ? AND partition_key = ?`,
		bytes.Repeat([]byte{0xcd}, 32), Chain.TenantID, Chain.PartitionKey)
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueCheckpointMismatch, -1, uuid.Nil})
	// Likewise a snapshot's key_id column, against the key that verifies.
	h.exec(`UPDATE {batch_snapshot} SET key_id = ?`, "someone-else+00000000")
	h.expectSnapshot(false, "key_id")
	// And the envelope's base64 has one form: a newline inside, which the
	// DSSE library skips (the signature still verifies), is refused.
	var envelope string
	if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(`SELECT CAST(envelope AS TEXT) FROM {batch_snapshot}`)).Scan(&envelope); err != nil {
		h.t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(envelope), &env); err != nil {
		h.t.Fatal(err)
	}
	payload := env["payload"].(string)
	env["payload"] = payload[:8] + "\n" + payload[8:]
	changed, _ := json.Marshal(env)
	h.exec(`UPDATE {batch_snapshot} SET envelope = ?, key_id = ?`, string(changed), h.pub.KeyID())
	h.expectSnapshot(false, "canonical")
}

// Issue 14: an auditor's checkpoint of a chain the run does not verify is
// refused, not silently unused.
func testForeignCheckpoint(h *auditHarness) {
	_, note := h.setup()
	v := audit.Verifier{Store: h.store, Key: h.pub, Checkpoints: [][]byte{note}}
	_, err := v.VerifyChain(h.ctx, Other)
	if err == nil || !strings.Contains(err.Error(), audit.Origin(Chain)) {
		h.t.Fatalf("verifying %v with a checkpoint of %v: %v; want a refusal naming its origin", Other, Chain, err)
	}
	if _, err := v.Verify(h.ctx, Other.TenantID, Other.PartitionKey); err == nil {
		h.t.Fatalf("Verify of %v alone accepted a checkpoint of %v", Other, Chain)
	}
	if res, err := v.Verify(h.ctx, Chain.TenantID); err != nil || !res.Valid {
		h.t.Fatalf("the tenant's chains with the checkpoint of one of them: %+v, %v", res, err)
	}
}

func testHeadChecks(h *auditHarness) {
	rs, _ := h.setup()
	setHead := func(r row, count int64) {
		h.exec(`UPDATE {chain_heads} SET last_link = ?, last_t_hlc = ?, entry_count = ? WHERE tenant_id = ? AND partition_key = ?`,
			r.Link[:], r.THLC, count, Chain.TenantID, Chain.PartitionKey)
	}
	plain := audit.Verifier{NoStoredCheckpoints: true}
	// A head that names an earlier entry is a cache not yet refreshed.
	setHead(rs[9], 10)
	mine, _ := h.verify(plain)
	h.expect(mine)
	// One that names a position with another entry's link is not.
	setHead(rs[8], 10)
	mine, _ = h.verify(plain)
	h.expect(mine, want{audit.IssueHeadMismatch, 19, rs[19].JobID})
	// Nor one past the end.
	setHead(rs[19], 25)
	mine, _ = h.verify(plain)
	h.expect(mine, want{audit.IssueHeadMismatch, 19, rs[19].JobID})
	// The tail deleted, the head left on the old last entry.
	setHead(rs[19], 20)
	if n := h.exec(`DELETE FROM {scheduler_log} WHERE tenant_id = ? AND partition_key = ? AND chain_pos >= 17`, Chain.TenantID, Chain.PartitionKey); n != 3 {
		h.t.Fatalf("deleted %d rows", n)
	}
	mine, _ = h.verify(plain)
	h.expect(mine, want{audit.IssueHeadMismatch, 16, rs[16].JobID})
}

func testSwapTHLC(h *auditHarness) {
	rs, _ := h.setup()
	h.exec(`UPDATE {scheduler_log} SET t_hlc = ? WHERE job_id = ?`, rs[6].THLC, rs[5].JobID.String())
	h.exec(`UPDATE {scheduler_log} SET t_hlc = ? WHERE job_id = ?`, rs[5].THLC, rs[6].JobID.String())
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine,
		want{audit.IssueLinkMismatch, 5, rs[5].JobID},
		want{audit.IssueLinkMismatch, 6, rs[6].JobID},
		want{audit.IssueTHLCNotIncreasing, 6, rs[6].JobID})
	h.expectSnapshot(false, "does not recompute")
}

// appendRaw inserts an entry after the chain's last one with raw SQL, as a
// forger would, and moves chain_heads to it.
func (h *auditHarness) appendRaw(rs []row, prev chain.Hash, id uuid.UUID, kind, key, payload string) row {
	h.t.Helper()
	ph, err := chain.PayloadHash([]byte(payload))
	if err != nil {
		h.t.Fatal(err)
	}
	last, err := hlc.Parse(rs[len(rs)-1].THLC)
	if err != nil {
		h.t.Fatal(err)
	}
	last.Physical += 5
	thlc := last.String()
	link := computeLink(h.t, prev, id, thlc, ph)
	pos := int64(len(rs))
	var keyArg any
	if key != "" {
		keyArg = key
	}
	now := h.tg.Time(time.UnixMilli(h.wall.UnixMilli()))
	h.exec(`INSERT INTO {scheduler_log} (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, created_at,
		chain_pos, node_id, kind, payload, priority, max_attempts, run_at, idempotency_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 3, ?, ?)`,
		Chain.TenantID, thlc, Chain.PartitionKey, id.String(), ph[:], prev[:], link[:], now, pos, "node-a", kind, payload, now, keyArg)
	h.exec(`UPDATE {chain_heads} SET last_link = ?, last_t_hlc = ?, entry_count = ? WHERE tenant_id = ? AND partition_key = ?`,
		link[:], thlc, pos+1, Chain.TenantID, Chain.PartitionKey)
	return row{Pos: pos, JobID: id, THLC: thlc, PayloadHash: ph, PrevLink: prev, Link: link, Payload: payload}
}

func testForged(h *auditHarness) {
	rs, _ := h.setup()
	payload := `{"to":"mallory@example.com"}`
	ph, _ := chain.PayloadHash([]byte(payload))
	id, _ := chain.JobID(Chain.TenantID, Chain.PartitionKey, "email.send", "", ph)
	// Its link is correct for the predecessor it names, but that is entry
	// 17, not the chain's last entry 19.
	forged := h.appendRaw(rs, rs[17].Link, id, "email.send", "", payload)
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueBrokenPredecessor, 20, forged.JobID})
	// The checkpoint of 20 entries and the snapshot of 0..19 still hold:
	// what they cover is intact. The checkpointer refuses to sign past it.
	h.expectSnapshot(true, "")
	res, err := h.cp.RunOnce(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(res.ChainsFailed) != 1 || res.ChainsFailed[0] != Chain {
		h.t.Fatalf("checkpointer over a forged entry: %+v", res)
	}
	if cps, _ := h.store.Checkpoints(h.ctx, Chain, 1); len(cps) != 1 || cps[0].Size != 20 {
		h.t.Fatalf("checkpoint signed over the forged entry: %+v", cps)
	}
}

func testDuplicate(h *auditHarness) {
	rs, _ := h.setup()
	// Job 5 replayed at the end, correctly linked: only the duplicate
	// check sees it.
	dup := h.appendRaw(rs, rs[19].Link, rs[5].JobID, "email.send", "", rs[5].Payload)
	if dup.PayloadHash != rs[5].PayloadHash {
		h.t.Fatal("replayed payload hashes differently")
	}
	mine, _ := h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueDuplicateJobID, 20, rs[5].JobID})
}

func testRewrite(h *auditHarness) {
	t := h.t
	rs, note := h.setup()
	// The forger edits entry 3 (a job with an idempotency key, so its id
	// does not depend on the payload) and recomputes every later link and
	// the head: every check of the plain chain passes.
	payload := `{"to":"mallory@example.com","n":3}`
	ph, _ := chain.PayloadHash([]byte(payload))
	h.exec(`UPDATE {scheduler_log} SET payload = ?, payload_hash = ? WHERE job_id = ?`, payload, ph[:], rs[3].JobID.String())
	prev := rs[2].Link
	for i := 3; i < len(rs); i++ {
		p := rs[i].PayloadHash
		if i == 3 {
			p = ph
		}
		link := computeLink(t, prev, rs[i].JobID, rs[i].THLC, p)
		h.exec(`UPDATE {scheduler_log} SET prev_link = ?, link = ? WHERE job_id = ?`, prev[:], link[:], rs[i].JobID.String())
		prev = link
	}
	h.exec(`UPDATE {chain_heads} SET last_link = ? WHERE tenant_id = ? AND partition_key = ?`, prev[:], Chain.TenantID, Chain.PartitionKey)

	mine, _ := h.verify(audit.Verifier{NoStoredCheckpoints: true})
	h.expect(mine) // the hash chain alone cannot see a full rewrite

	// The stored checkpoint and the stored tree pin it to entry 3.
	mine, _ = h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine, want{audit.IssueCheckpointMismatch, 3, rs[3].JobID}, want{audit.IssueTreeMismatch, -1, uuid.Nil})
	h.expectSnapshot(false, "rewritten")

	// The checkpointer does not sign the rewritten history either.
	if _, err := h.q.Enqueue(h.ctx, queue.Job{TenantID: Chain.TenantID, PartitionKey: Chain.PartitionKey, Kind: "email.send", Payload: []byte(`{"after":1}`)}); err != nil {
		t.Fatal(err)
	}
	res, err := h.cp.RunOnce(h.ctx)
	if err != nil || len(res.ChainsFailed) != 1 {
		t.Fatalf("checkpointer after a rewrite: %+v, %v", res, err)
	}

	// The forger also erases the tree and the checkpoints, and lets the
	// checkpointer sign the forged history afresh.
	h.exec(`DELETE FROM {chain_checkpoints}`)
	h.exec(`DELETE FROM {chain_tree_hashes}`)
	h.exec(`DELETE FROM {chain_trees}`)
	mine, _ = h.verify(audit.Verifier{Key: h.pub})
	h.expect(mine) // nothing left in the database to compare with
	newNote := h.checkpoint()
	if b, _, _ := audit.OpenCheckpoint(newNote, h.pub); b.Size != 21 {
		t.Fatalf("re-signed checkpoint of size %d, want 21", b.Size)
	}

	// The auditor kept the old checkpoint: the verifier and an offline
	// consistency proof both expose the rewrite.
	mine, _ = h.verify(audit.Verifier{Key: h.pub, Checkpoints: [][]byte{note}})
	h.expect(mine, want{audit.IssueCheckpointMismatch, 19, uuid.Nil})
	p, err := audit.ProveConsistency(h.ctx, h.store, Chain, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := audit.CheckProof(p, h.pub); err != nil || !res.Valid {
		t.Fatalf("without the auditor's checkpoint the proof only shows some prefix: %+v, %v", res, err)
	}
	res2, err := audit.CheckProof(p, h.pub, note)
	if err != nil || res2.Valid || !strings.Contains(res2.Problem, "rewritten") {
		t.Fatalf("consistency with the auditor's checkpoint after a rewrite: %+v, %v", res2, err)
	}
	// Inclusion of the edited job in the new tree verifies (the tree is
	// the forger's), but the proof's entry is the forged one: only the
	// old checkpoint tells the history apart.
	ip, err := audit.ProveInclusion(h.ctx, h.store, driver.JobRef{JobID: rs[3].JobID})
	if err != nil {
		t.Fatal(err)
	}
	if ip.Entry.PayloadHash != ph.String() {
		t.Fatalf("inclusion proof entry payload hash %s", ip.Entry.PayloadHash)
	}
}

func testBatchSnapshot(h *auditHarness) {
	t := h.t
	rs := h.build(10)
	h.wall.Advance(time.Second)
	leases, err := h.q.Dequeue(h.ctx, queue.DequeueOptions{Limit: 4, TenantID: Chain.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := h.snap.SnapshotBatch(h.ctx, leases)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[uuid.UUID]bool{}
	for _, s := range snaps {
		for _, r := range h.rows(s.Key) {
			if r.Pos >= s.FromPos && r.Pos <= s.ToPos {
				covered[r.JobID] = true
			}
		}
		c, err := audit.VerifySnapshot(h.ctx, h.store, s, h.pub)
		if err != nil || !c.Valid {
			t.Fatalf("snapshot %+v: %+v, %v", s, c, err)
		}
	}
	for _, l := range leases {
		if !covered[l.JobID] {
			t.Errorf("leased job %s is in no snapshot", l.JobID)
		}
	}
	if got := auditCounter(h.m.BatchSnapshots); got != float64(len(snaps)) || len(snaps) == 0 {
		t.Errorf("scheduler_batch_snapshots_created_total = %v, snapshots %d", got, len(snaps))
	}
	// Editing a row of the table does not fool the check: the signed
	// statement is what counts.
	h.exec(`UPDATE {batch_snapshot} SET to_chain_pos = to_chain_pos + 1, entry_count = entry_count + 1 WHERE batch_id = ?`, snaps[0].BatchID.String())
	all, err := h.store.Snapshots(h.ctx, driver.SnapshotFilter{BatchID: snaps[0].BatchID})
	if err != nil || len(all) != 1 {
		t.Fatalf("snapshot by id: %v, %v", all, err)
	}
	c, err := audit.VerifySnapshot(h.ctx, h.store, &all[0], h.pub)
	if err != nil || c.Valid || !strings.Contains(strings.Join(c.Problems, " "), "differs from what was signed") {
		t.Fatalf("edited snapshot row: %+v, %v", c, err)
	}
	_ = rs
}

func testCheckpointerLeadership(h *auditHarness) {
	t := h.t
	h.build(3)
	b := checkpointerLike(h.cp)
	b.Holder = "node-b"
	res, err := h.cp.RunOnce(h.ctx)
	if err != nil || !res.Led || len(res.Checkpoints) != 2 {
		t.Fatalf("node-a: %+v, %v", res, err)
	}
	for _, k := range []chain.Key{Chain, Other} {
		if _, err := h.q.Enqueue(h.ctx, queue.Job{TenantID: k.TenantID, PartitionKey: k.PartitionKey, Kind: "report", Payload: []byte(`{"more":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = b.RunOnce(h.ctx)
	if err != nil || res.Led {
		t.Fatalf("node-b while node-a leads: %+v, %v", res, err)
	}
	h.wall.Advance(2 * time.Minute)
	res, err = b.RunOnce(h.ctx)
	if err != nil || !res.Led || len(res.Checkpoints) != 2 {
		t.Fatalf("node-b after node-a's lease expired: %+v, %v", res, err)
	}
}

// checkpointerLike is a second checkpointer configured as cp is (a
// Checkpointer holds state of its own and is not copied).
func checkpointerLike(cp *audit.Checkpointer) *audit.Checkpointer {
	return &audit.Checkpointer{Store: cp.Store, Key: cp.Key, Leader: cp.Leader, Holder: cp.Holder, Now: cp.Now,
		LeaseFor: cp.LeaseFor, Interval: cp.Interval, Chunk: cp.Chunk, Logger: cp.Logger,
		Witnesses: cp.Witnesses, Cosignatures: cp.Cosignatures, WitnessObserver: cp.WitnessObserver}
}

// racingStore lets another checkpointer run to the end just before this
// one stores its first hashes, as a second node without leadership (or an
// operator's ordo proof) may.
type racingStore struct {
	driver.AuditStore
	other func()
}

func (s *racingStore) AppendHashes(ctx context.Context, p driver.AppendHashesParams) error {
	if other := s.other; other != nil {
		s.other = nil
		other()
	}
	return s.AuditStore.AppendHashes(ctx, p)
}

// testCheckpointersRace: a checkpointer whose tree another one extended
// meanwhile (ErrTreeMoved) goes on from what the other stored, and both
// chains end checkpointed at their full size.
func testCheckpointersRace(h *auditHarness) {
	t := h.t
	h.build(3)
	other := checkpointerLike(h.cp)
	other.Leader = nil
	racing := &racingStore{AuditStore: h.store}
	racing.other = func() {
		if _, err := other.RunOnce(h.ctx); err != nil {
			t.Errorf("the other checkpointer: %v", err)
		}
	}
	first := checkpointerLike(h.cp)
	first.Leader, first.Store = nil, racing
	if _, err := first.RunOnce(h.ctx); err != nil {
		t.Fatalf("a checkpointer that lost the race: %v", err)
	}
	if racing.other != nil {
		t.Fatal("the race never happened: AppendHashes was not called")
	}
	for _, k := range []chain.Key{Chain, Other} {
		cps, err := h.store.Checkpoints(h.ctx, k, 1)
		if err != nil {
			t.Fatal(err)
		}
		size, err := h.store.TreeSize(h.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		head, _, err := h.store.Head(h.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) != 1 || cps[0].Size != head.EntryCount || size != head.EntryCount {
			t.Errorf("%v: tree size %d, checkpoints %+v; want both at %d entries", k, size, cps, head.EntryCount)
		}
	}
}
