// The audit-store area: chains built through the real queue, then tampered
// with raw SQL the way someone who can write to the database would, then
// verified. For each tampering the verifier must name the right issue at
// the right entry, and a checkpoint or snapshot signed before must fail its
// check where it should (and hold where the tampering is outside what it
// covers).

package drivertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/queue"
)

// runAudit is the audit-store area: verifier, checkpoints, snapshots,
// proofs, and tampering with raw SQL.
func runAudit(t *testing.T, newTarget func(t *testing.T) Target) {
	for _, tc := range []struct {
		name string
		fn   func(*auditHarness)
	}{
		{"clean chain verifies, with checkpoints, snapshots and proofs", testClean},
		{"tamper: payload", testPayload},
		{"tamper: payload_hash", testPayloadHash},
		{"tamper: link", testLink},
		{"tamper: delete an entry in the middle", testDeleteMiddle},
		{"tamper: delete the tail and move chain_heads back", testTruncateTail},
		{"chain_heads may trail the chain but must name an entry of it", testHeadChecks},
		{"an auditor's checkpoint of another chain is refused", testForeignCheckpoint},
		{"the checkpointer does not sign from a changed tree cache", testCorruptTreeCache},
		{"tamper: the unsigned columns beside checkpoints and snapshots", testCheckpointColumns},
		{"tamper: swap t_hlc of two entries", testSwapTHLC},
		{"tamper: forged entry on a wrong predecessor", testForged},
		{"tamper: duplicate job id", testDuplicate},
		{"tamper: recompute the whole chain after an early edit", testRewrite},
		{"snapshot of a dequeued batch", testBatchSnapshot},
		{"checkpointer takes turns by leadership", testCheckpointerLeadership},
		{"checkpointers racing on one tree", testCheckpointersRace},
		{"periodic verification reads only the new entries", testVerifyLoopReadsOnlyNewEntries},
		{"periodic verification finds and keeps reporting new tampering", testVerifyLoopFindsNewTampering},
		{"periodic verification leaves history to the full verification", testVerifyLoopLeavesHistoryToFullVerify},
		{"periodic verification takes turns by leadership", testVerifyLoopLeadership},
		{"periodic verification catches up in bounded rounds", testVerifyLoopCatchesUp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAuditHarness(t, newTarget(t))
			tc.fn(h)
		})
	}
}

// Chain is the chain every test builds and tampers with; Other is a
// second chain of the same tenant that must stay valid throughout.
var (
	Chain = chain.Key{TenantID: "acme", PartitionKey: "p1"}
	Other = chain.Key{TenantID: "acme", PartitionKey: "p2"}
)

// KeySeed makes the test key deterministic.
var KeySeed = bytes.Repeat([]byte{7}, 32)

type auditHarness struct {
	t     *testing.T
	ctx   context.Context
	tg    Target
	q     *queue.Queue
	wall  *hlc.ManualClock
	be    driver.Driver
	store driver.AuditStore
	key   *audit.PrivateKey
	pub   *audit.PublicKey
	m     *metrics.Metrics
	cp    *audit.Checkpointer
	snap  *audit.Snapshotter
}

func newAuditHarness(t *testing.T, tg Target) *auditHarness {
	ctx := context.Background()
	be := tg.Open(t)
	store, state := be.AuditStore(), be.HLCState()
	clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a", Store: state})
	m, _ := metrics.New(nil)
	now := func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
	q, err := queue.New(ctx, queue.Config{Backend: be, Clock: clock, Options: queue.Options{EnableHlcOrdering: true}, Now: now, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := audit.GenerateKey(bytes.NewReader(KeySeed), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	h := &auditHarness{t: t, ctx: ctx, tg: tg, q: q, wall: wall, be: be, store: store, key: key, pub: key.Public(), m: m}
	h.cp = &audit.Checkpointer{Store: store, Key: key, Now: now, Chunk: 7, Leader: be, Holder: "node-a"}
	h.snap = &audit.Snapshotter{Store: store, Key: key, Clock: clock, Metrics: m, Now: now}
	return h
}

// build enqueues n jobs into Chain (and 3 into Other) and returns the
// chain's entries in chain order.
func (h *auditHarness) build(n int) []row {
	h.t.Helper()
	var jobs []queue.Job
	for i := range n {
		j := queue.Job{TenantID: Chain.TenantID, PartitionKey: Chain.PartitionKey, Kind: "email.send",
			Payload: []byte(fmt.Sprintf(`{"to": "user-%d@example.com", "n": %d, "tags": ["a", "b"], "z": {"y": 1, "x": null}}`, i, i))}
		if i%4 == 3 {
			j.IdempotencyKey = fmt.Sprintf("key-%d", i)
		}
		jobs = append(jobs, j)
	}
	for i := range 3 {
		jobs = append(jobs, queue.Job{TenantID: Other.TenantID, PartitionKey: Other.PartitionKey, Kind: "report", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	// Several transactions, so the chain is built by several appends.
	for len(jobs) > 0 {
		k := min(len(jobs), 6)
		if _, err := h.q.EnqueueMany(h.ctx, jobs[:k]); err != nil {
			h.t.Fatal(err)
		}
		jobs = jobs[k:]
		h.wall.Advance(time.Millisecond)
	}
	return h.rows(Chain)
}

// row is a log entry as read with raw SQL.
type row struct {
	Pos         int64
	JobID       uuid.UUID
	THLC        string
	PayloadHash chain.Hash
	PrevLink    chain.Hash
	Link        chain.Hash
	Payload     string
}

func (h *auditHarness) sql(q string) string { return h.tg.expand(q) }

func (h *auditHarness) exec(q string, args ...any) int64 {
	h.t.Helper()
	return h.tg.exec(h.t, h.ctx, q, args...)
}

func (h *auditHarness) rows(k chain.Key) []row {
	h.t.Helper()
	rs, err := h.tg.DB.QueryContext(h.ctx, h.sql(`SELECT chain_pos, CAST(job_id AS TEXT), t_hlc, payload_hash, prev_link, link, CAST(payload AS TEXT)
		FROM {scheduler_log} WHERE tenant_id = ? AND partition_key = ? ORDER BY chain_pos`), k.TenantID, k.PartitionKey)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rs.Close()
	var out []row
	for rs.Next() {
		var r row
		var id string
		var ph, prev, link []byte
		if err := rs.Scan(&r.Pos, &id, &r.THLC, &ph, &prev, &link, &r.Payload); err != nil {
			h.t.Fatal(err)
		}
		r.JobID = uuid.MustParse(id)
		copy(r.PayloadHash[:], ph)
		copy(r.PrevLink[:], prev)
		copy(r.Link[:], link)
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// checkpoint runs the checkpointer and returns the chain's latest signed
// checkpoint (the auditor keeps a copy).
func (h *auditHarness) checkpoint() []byte {
	h.t.Helper()
	if _, err := h.cp.RunOnce(h.ctx); err != nil {
		h.t.Fatal(err)
	}
	cps, err := h.store.Checkpoints(h.ctx, Chain, 1)
	if err != nil || len(cps) != 1 {
		h.t.Fatalf("checkpoints of %v: %v, %v", Chain, cps, err)
	}
	return cps[0].Note
}

// verify runs the verifier on Chain and Other.
func (h *auditHarness) verify(v audit.Verifier) (*audit.ChainResult, *audit.ChainResult) {
	h.t.Helper()
	v.Store = h.store
	if v.Metrics == nil {
		v.Metrics = h.m
	}
	res, err := v.Verify(h.ctx, Chain.TenantID)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(res.Chains) != 2 {
		h.t.Fatalf("verified %d chains of tenant acme, want 2", len(res.Chains))
	}
	var mine, other *audit.ChainResult
	for _, c := range res.Chains {
		switch c.PartitionKey {
		case Chain.PartitionKey:
			mine = c
		case Other.PartitionKey:
			other = c
		}
	}
	if mine == nil || other == nil {
		h.t.Fatalf("chains verified: %+v", res.Chains)
	}
	if !other.Valid {
		h.t.Errorf("the untouched chain %v is reported invalid: %v", Other, other.Issues)
	}
	return mine, other
}

// want is an expected issue: its type and the chain_pos it names.
type want struct {
	Type audit.IssueType
	Pos  int64
	Job  uuid.UUID // uuid.Nil: no job (a missing entry)
}

// expect checks that res holds exactly the wanted issues.
func (h *auditHarness) expect(res *audit.ChainResult, wants ...want) {
	h.t.Helper()
	got := make([]want, 0, len(res.Issues))
	for _, is := range res.Issues {
		got = append(got, want{is.Type, is.Seq, is.JobID})
	}
	key := func(w want) string { return fmt.Sprintf("%s@%d/%s", w.Type, w.Pos, w.Job) }
	sort.Slice(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	sort.Slice(wants, func(i, j int) bool { return key(wants[i]) < key(wants[j]) })
	gs, ws := make([]string, len(got)), make([]string, len(wants))
	for i := range got {
		gs[i] = key(got[i])
	}
	for i := range wants {
		ws[i] = key(wants[i])
	}
	if strings.Join(gs, " ") != strings.Join(ws, " ") {
		var lines []string
		for _, is := range res.Issues {
			lines = append(lines, "  "+is.String())
		}
		h.t.Fatalf("issues:\n got  %v\n want %v\n%s", gs, ws, strings.Join(lines, "\n"))
	}
	if res.Valid != (len(wants) == 0) {
		h.t.Fatalf("Valid = %v with %d issues", res.Valid, len(wants))
	}
	for _, is := range res.Issues {
		if is.Description == "" || is.TenantID != Chain.TenantID || is.PartitionKey != Chain.PartitionKey {
			h.t.Errorf("issue without description or chain: %+v", is)
		}
		if is.JobID != uuid.Nil && (is.THLC == "" || is.SeqBigint == 0) {
			h.t.Errorf("issue at job %s lacks t_hlc or seq_bigint: %+v", is.JobID, is)
		}
	}
}

// snapshotValid verifies every stored snapshot and returns their verdicts.
func (h *auditHarness) snapshotChecks() []*audit.SnapshotCheck {
	h.t.Helper()
	snaps, err := h.store.Snapshots(h.ctx, driver.SnapshotFilter{TenantID: Chain.TenantID, PartitionKey: &Chain.PartitionKey})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*audit.SnapshotCheck
	for i := range snaps {
		c, err := audit.VerifySnapshot(h.ctx, h.store, &snaps[i], h.pub)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func (h *auditHarness) expectSnapshot(valid bool, problem string) {
	h.t.Helper()
	checks := h.snapshotChecks()
	if len(checks) != 1 {
		h.t.Fatalf("%d snapshots, want 1", len(checks))
	}
	c := checks[0]
	if c.Valid != valid {
		h.t.Fatalf("snapshot valid = %v, want %v; problems: %v", c.Valid, valid, c.Problems)
	}
	if !c.SignatureOK {
		h.t.Errorf("snapshot signature no longer verifies: %v", c.Problems)
	}
	if problem != "" && !strings.Contains(strings.Join(c.Problems, "\n"), problem) {
		h.t.Errorf("snapshot problems %q do not mention %q", c.Problems, problem)
	}
}

func sha(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func computeLink(t *testing.T, prev chain.Hash, id uuid.UUID, thlc string, ph chain.Hash) chain.Hash {
	t.Helper()
	l, err := chain.Link(prev, id, thlc, ph)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
