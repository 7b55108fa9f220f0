// The periodic, incremental verification (audit.IncrementalVerifier):
// a round reads only the entries after the verified position, finds what
// was changed among them, keeps finding it, and leaves what is before the
// verified position to the full verification.

package drivertest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
)

// readCounter is an audit store that counts the log entries Scan hands
// out, per chain, and remembers the lowest chain_pos asked for: the
// proof of what a round read.
type readCounter struct {
	driver.AuditStore
	mu       sync.Mutex
	read     map[chain.Key]int64
	lowest   map[chain.Key]int64
	minStart map[chain.Key]int64
}

func newReadCounter(s driver.AuditStore) *readCounter {
	c := &readCounter{AuditStore: s}
	c.reset()
	return c
}

func (c *readCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read, c.lowest, c.minStart = map[chain.Key]int64{}, map[chain.Key]int64{}, map[chain.Key]int64{}
}

func (c *readCounter) Scan(ctx context.Context, p driver.ScanParams, fn func(*driver.LogEntry) error) error {
	c.mu.Lock()
	if low, ok := c.minStart[p.Key]; !ok || p.From < low {
		c.minStart[p.Key] = p.From
	}
	c.mu.Unlock()
	return c.AuditStore.Scan(ctx, p, func(e *driver.LogEntry) error {
		c.mu.Lock()
		c.read[p.Key]++
		if low, ok := c.lowest[p.Key]; !ok || e.Pos < low {
			c.lowest[p.Key] = e.Pos
		}
		c.mu.Unlock()
		return fn(e)
	})
}

// entriesRead returns the entries of k read since the last reset and the
// lowest chain_pos among them (-1: none).
func (c *readCounter) entriesRead(k chain.Key) (n, lowest int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lowest = -1
	if l, ok := c.lowest[k]; ok {
		lowest = l
	}
	return c.read[k], lowest
}

// loopHarness runs periodic rounds over an auditHarness's chains.
type loopHarness struct {
	*auditHarness
	reads *readCounter
	v     *audit.IncrementalVerifier
	logs  *bytes.Buffer
	next  int // payload counter for appended jobs
}

func newLoopHarness(h *auditHarness) *loopHarness {
	l := &loopHarness{auditHarness: h, reads: newReadCounter(h.store), logs: &bytes.Buffer{}, next: 1000}
	l.v = &audit.IncrementalVerifier{Store: l.reads, Metrics: h.m, Key: h.pub, Leader: h.be, Holder: "node-a",
		Now: h.cp.Now, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: l.logs}, nil))}
	return l
}

// lockedWriter serialises writes to a buffer the test reads.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// appendJobs enqueues n more jobs into Chain, each with a payload not
// used before, and returns the chain's entries.
func (l *loopHarness) appendJobs(n int) []row {
	l.t.Helper()
	var jobs []queue.Job
	for range n {
		l.next++
		jobs = append(jobs, queue.Job{TenantID: Chain.TenantID, PartitionKey: Chain.PartitionKey, Kind: "email.send",
			Payload: []byte(fmt.Sprintf(`{"to": "later-%d@example.com"}`, l.next))})
	}
	if _, err := l.q.EnqueueMany(l.ctx, jobs); err != nil {
		l.t.Fatal(err)
	}
	return l.rows(Chain)
}

// round runs one round and returns it with Chain's part of it.
func (l *loopHarness) round() (*audit.Round, *audit.ChainRound) {
	l.t.Helper()
	l.reads.reset()
	r, err := l.v.RunOnce(l.ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	if !r.Led {
		l.t.Fatal("the verifier did not lead")
	}
	var mine *audit.ChainRound
	for _, c := range r.Chains {
		if c.TenantID == Chain.TenantID && c.PartitionKey == Chain.PartitionKey {
			mine = c
		} else if !c.Valid {
			l.t.Errorf("the untouched chain %s/%q is reported invalid: %v", c.TenantID, c.PartitionKey, c.Issues)
		}
	}
	if mine == nil {
		l.t.Fatalf("the round did not verify %v: %+v", Chain, r.Chains)
	}
	return r, mine
}

// progress returns Chain's stored progress.
func (l *loopHarness) progress() driver.ChainVerification {
	l.t.Helper()
	ps, err := l.store.ChainVerifications(l.ctx, Chain.TenantID)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, p := range ps {
		if p.Key == Chain {
			return p
		}
	}
	l.t.Fatalf("no progress for %v in %+v", Chain, ps)
	return driver.ChainVerification{}
}

// expectRead checks that the last round read exactly n entries of Chain,
// none before chain_pos from.
func (l *loopHarness) expectRead(n, from int64) {
	l.t.Helper()
	got, lowest := l.reads.entriesRead(Chain)
	if got != n || (n > 0 && lowest != from) {
		l.t.Fatalf("the round read %d entries of %v from chain_pos %d; want %d from %d", got, Chain, lowest, n, from)
	}
	if start, ok := l.reads.minStart[Chain]; ok && start < from {
		l.t.Fatalf("the round asked for entries from chain_pos %d, before the verified position %d", start, from)
	}
}

func (l *loopHarness) counters() (valid, invalid, issues float64) {
	return auditCounter(l.m.ChainVerifications.WithLabelValues("valid")), auditCounter(l.m.ChainVerifications.WithLabelValues("invalid")),
		auditCounter(l.m.ChainIssues)
}

// testVerifyLoopReadsOnlyNewEntries: the first round reads the chain from
// its genesis; after more appends, the next reads only them, joins them by
// link and by the signed checkpoint, and records how far it got.
func testVerifyLoopReadsOnlyNewEntries(h *auditHarness) {
	l := newLoopHarness(h)
	rs := l.build(10)
	r, mine := l.round()
	l.expectRead(10, 0)
	if !r.Valid || !mine.Valid || mine.EntriesChecked != 10 || mine.VerifiedSize != 10 || mine.From != 0 {
		l.t.Fatalf("first round: %+v", mine)
	}
	p := l.progress()
	if p.VerifiedSize != 10 || p.VerifiedLink != rs[9].Link || p.VerifiedTHLC != rs[9].THLC || !p.LastValid || p.LastEntries != 10 ||
		p.LastRunAt.IsZero() || len(p.TreeEdge) != 2 {
		l.t.Fatalf("progress after the first round: %+v", p)
	}
	if valid, invalid, issues := l.counters(); valid != 2 || invalid != 0 || issues != 0 {
		l.t.Fatalf("after the first round: verifications valid %v invalid %v, issues %v; want 2, 0, 0", valid, invalid, issues)
	}

	// Five more, and a checkpoint over all fifteen: the round reads the
	// five and computes the root at 15 from the stored edge.
	rs = l.appendJobs(5)
	if _, err := l.cp.RunOnce(l.ctx); err != nil {
		l.t.Fatal(err)
	}
	_, mine = l.round()
	l.expectRead(5, 10)
	if !mine.Valid || mine.EntriesChecked != 5 || mine.From != 10 || mine.VerifiedSize != 15 || mine.CheckpointsChecked != 1 {
		l.t.Fatalf("second round: %+v", mine)
	}
	p = l.progress()
	if p.VerifiedSize != 15 || p.VerifiedLink != rs[14].Link || p.CheckpointSize != 15 {
		l.t.Fatalf("progress after the second round: %+v", p)
	}

	// Nothing new: nothing read, still valid, counted again.
	_, mine = l.round()
	l.expectRead(0, 15)
	if !mine.Valid || mine.EntriesChecked != 0 || mine.VerifiedSize != 15 {
		l.t.Fatalf("idle round: %+v", mine)
	}
	if valid, _, _ := l.counters(); valid != 6 {
		l.t.Fatalf("scheduler_chain_verifications_total{result=valid} = %v after three rounds of two chains, want 6", valid)
	}

	// A checkpoint signed after a round passed its size (here by hand, at
	// 16, over a tree the checkpointer extended to 18 without signing) is
	// joined by a consistency proof from the stored tree, reading no
	// entry; a signed root that the entries do not give is an issue.
	rs = l.appendJobs(3)
	quiet := &audit.Checkpointer{Store: dropCheckpoints{l.store}, Key: l.key, Now: l.cp.Now, Holder: "node-a"}
	if _, err := quiet.RunOnce(l.ctx); err != nil {
		l.t.Fatal(err)
	}
	_, mine = l.round()
	l.expectRead(3, 15)
	if !mine.Valid || mine.VerifiedSize != 18 || l.progress().CheckpointSize != 15 {
		l.t.Fatalf("round over three more: %+v, progress %+v", mine, l.progress())
	}
	links := make([]chain.Hash, 0, len(rs))
	for _, r := range rs {
		links = append(links, r.Link)
	}
	l.insertCheckpoint(16, audit.RangeRoot(links[:16]))
	_, mine = l.round()
	l.expectRead(0, 18)
	if !mine.Valid || mine.CheckpointsChecked != 1 || l.progress().CheckpointSize != 16 {
		l.t.Fatalf("round over a checkpoint signed at 16 after 18 were verified: %+v, progress %+v", mine, l.progress())
	}
	l.insertCheckpoint(17, audit.RangeRoot(links[:16])) // the root of 16 entries, said to be of 17
	_, mine = l.round()
	l.expectRead(0, 18)
	if mine.Valid || len(mine.Issues) != 1 || mine.Issues[0].Type != audit.IssueCheckpointMismatch || mine.VerifiedSize != 18 {
		l.t.Fatalf("round over a checkpoint with a wrong root: %+v", mine)
	}
	if p := l.progress(); p.CheckpointSize != 16 || p.LastValid {
		l.t.Fatalf("progress after the wrong checkpoint: %+v", p)
	}
}

// dropCheckpoints is an audit store that stores no checkpoint: a
// checkpointer on it only extends the trees.
type dropCheckpoints struct{ driver.AuditStore }

func (dropCheckpoints) InsertCheckpoint(context.Context, *driver.Checkpoint) error { return nil }

func (l *loopHarness) insertCheckpoint(size int64, root [32]byte) {
	l.t.Helper()
	body := audit.CheckpointBody{Origin: audit.Origin(Chain), Size: size, Root: root}
	note, err := audit.SignCheckpoint(body, l.key)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.store.InsertCheckpoint(l.ctx, &driver.Checkpoint{Key: Chain, Size: size, Root: root, Note: note, KeyName: l.key.KeyID(),
		CreatedAt: l.cp.Now()}); err != nil {
		l.t.Fatal(err)
	}
}

// testVerifyLoopFindsNewTampering: an entry changed after the verified
// position is found by the next round, logged at ERROR with its chain and
// position, counted; the position does not move, and the next round
// reports it again.
func testVerifyLoopFindsNewTampering(h *auditHarness) {
	l := newLoopHarness(h)
	l.build(10)
	l.round()
	rs := l.appendJobs(5)
	l.exec(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, `{"to": "mallory@example.com"}`, rs[12].JobID.String())
	for i := range 2 {
		r, mine := l.round()
		l.expectRead(5, 10)
		if r.Valid || mine.Valid || mine.IssueCount != 1 || mine.Issues[0].Type != audit.IssuePayloadHashMismatch ||
			mine.Issues[0].Seq != 12 || mine.Issues[0].JobID != rs[12].JobID || mine.VerifiedSize != 10 {
			l.t.Fatalf("round %d after tampering with chain_pos 12: %+v", i+2, mine)
		}
		p := l.progress()
		if p.VerifiedSize != 10 || p.VerifiedLink != rs[9].Link || p.LastValid || p.LastIssueCount != 1 ||
			!strings.Contains(string(p.LastIssues), string(audit.IssuePayloadHashMismatch)) {
			l.t.Fatalf("progress after round %d: %+v", i+2, p)
		}
		if _, invalid, issues := l.counters(); invalid != float64(i+1) || issues != float64(i+1) {
			l.t.Fatalf("after round %d: verifications{invalid} %v, issues %v; want %d and %d", i+2, invalid, issues, i+1, i+1)
		}
	}
	logs := l.logs.String()
	if strings.Count(logs, "level=ERROR") < 2 || !strings.Contains(logs, "chain_pos=12") || !strings.Contains(logs, "partition_key="+Chain.PartitionKey) {
		l.t.Fatalf("the issue is not logged at ERROR with its chain and position every round:\n%s", logs)
	}

	// Put right, the next round passes and moves on.
	l.exec(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, rs[12].Payload, rs[12].JobID.String())
	_, mine := l.round()
	if !mine.Valid || mine.VerifiedSize != 15 {
		l.t.Fatalf("round after the repair: %+v", mine)
	}

	// A broken link at the join: the first new entry must follow the last
	// verified one.
	rs = l.appendJobs(3)
	forged := computeLink(l.t, rs[13].Link, rs[15].JobID, rs[15].THLC, rs[15].PayloadHash)
	l.exec(`UPDATE {scheduler_log} SET prev_link = ?, link = ? WHERE job_id = ?`, rs[13].Link[:], forged[:], rs[15].JobID.String())
	_, mine = l.round()
	l.expectRead(3, 15)
	if mine.Valid || mine.Issues[0].Type != audit.IssueBrokenPredecessor || mine.Issues[0].Seq != 15 ||
		!strings.Contains(mine.Issues[0].Description, "verified by an earlier round (chain_pos 14)") {
		l.t.Fatalf("round over a first new entry linked to the wrong predecessor: %+v", mine)
	}
}

// testVerifyLoopLeavesHistoryToFullVerify: an entry changed before the
// verified position is not read again by a round (which stays valid), and
// the full verification finds it.
func testVerifyLoopLeavesHistoryToFullVerify(h *auditHarness) {
	l := newLoopHarness(h)
	rs := l.build(10)
	l.round()
	l.exec(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, `{"to": "mallory@example.com"}`, rs[3].JobID.String())
	l.appendJobs(5)
	_, mine := l.round()
	l.expectRead(5, 10)
	if !mine.Valid || mine.VerifiedSize != 15 {
		l.t.Fatalf("round after tampering before the verified position: %+v", mine)
	}
	full, _ := l.verify(audit.Verifier{Key: l.pub})
	l.expect(full, want{audit.IssuePayloadHashMismatch, 3, rs[3].JobID})

	// Progress that does not describe a tree of its size is not trusted:
	// the next round starts again from the genesis, and finds the change.
	l.exec(`UPDATE {chain_verification} SET tree_edge = ? WHERE tenant_id = ? AND partition_key = ?`, []byte{}, Chain.TenantID, Chain.PartitionKey)
	_, mine = l.round()
	l.expectRead(15, 0)
	if mine.Valid || mine.IssueCount != 1 || mine.Issues[0].Seq != 3 || mine.VerifiedSize != 0 {
		l.t.Fatalf("round after the progress was made inconsistent: %+v", mine)
	}
	if !strings.Contains(l.logs.String(), "level=WARN") {
		l.t.Errorf("the inconsistent progress is not logged:\n%s", l.logs.String())
	}
	// Deleting the row has the same effect.
	l.exec(`DELETE FROM {chain_verification} WHERE tenant_id = ? AND partition_key = ?`, Chain.TenantID, Chain.PartitionKey)
	_, mine = l.round()
	l.expectRead(15, 0)
	if mine.Valid || mine.Issues[0].Seq != 3 {
		l.t.Fatalf("round after the progress row was deleted: %+v", mine)
	}
}

// testVerifyLoopLeadership: a second node's verifier does nothing while
// the first holds the lease.
func testVerifyLoopLeadership(h *auditHarness) {
	l := newLoopHarness(h)
	l.build(3)
	l.round()
	other := &audit.IncrementalVerifier{Store: l.store, Leader: l.tg.Open(l.t), Holder: "node-b", Now: l.cp.Now}
	r, err := other.RunOnce(l.ctx)
	if err != nil || r.Led || len(r.Chains) != 0 {
		l.t.Fatalf("a second node's round while node-a leads: %+v, %v", r, err)
	}
}

// testVerifyLoopCatchesUp: a round reads at most MaxRoundEntries of a
// chain; Run follows a round that left a chain behind with the next at
// once (no waiting for the interval), and a checkpoint beyond the entries
// read is not taken for truncation meanwhile.
func testVerifyLoopCatchesUp(h *auditHarness) {
	l := newLoopHarness(h)
	l.build(10)
	if _, err := l.cp.RunOnce(l.ctx); err != nil {
		l.t.Fatal(err)
	}
	l.v.MaxRoundEntries = 4
	l.v.Interval = 24 * time.Hour // only the catching up may start a round
	rounds := make(chan *audit.Round, 10)
	l.v.OnRound = func(r *audit.Round, err error) {
		if err != nil {
			l.t.Errorf("round: %v", err)
		}
		rounds <- r
	}
	ctx, cancel := context.WithCancel(l.ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = l.v.Run(ctx)
	}()
	defer func() {
		cancel()
		<-stopped
	}()
	var got []string
	for _, want := range []struct {
		size   int64
		behind bool
	}{{4, true}, {8, true}, {10, false}} {
		var r *audit.Round
		select {
		case r = <-rounds:
		case <-time.After(testsignal.Timeout):
			l.t.Fatalf("no round after %v", got)
		}
		var mine *audit.ChainRound
		for _, c := range r.Chains {
			if c.TenantID == Chain.TenantID && c.PartitionKey == Chain.PartitionKey {
				mine = c
			}
		}
		if mine == nil {
			l.t.Fatalf("the round did not verify %v", Chain)
		}
		got = append(got, fmt.Sprintf("%d/%v/%v", mine.VerifiedSize, mine.Behind, mine.Valid))
		if mine.VerifiedSize != want.size || mine.Behind != want.behind || !mine.Valid {
			l.t.Fatalf("rounds: %v; want verified size %d, behind %v, valid", got, want.size, want.behind)
		}
	}
	if p := l.progress(); p.VerifiedSize != 10 || p.CheckpointSize != 10 {
		l.t.Fatalf("progress after catching up: %+v", p)
	}
}
