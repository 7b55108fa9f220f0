package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
)

// headNode is one process appending to the chain acme/"": its own
// handle on a shared database, its own clock.
type headNode struct {
	name string
	db   *postgres.DB
	q    *queue.Queue
	n    int
}

func newHeadNode(t *testing.T, url, node string, interval time.Duration) *headNode {
	t.Helper()
	db := testdb.Open(t, postgres.Open, url)
	db.SetHeadRefreshInterval(interval)
	clock, _ := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: node, Store: db.HLCState()})
	q, err := queue.New(context.Background(), queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		t.Fatal(err)
	}
	return &headNode{name: node, db: db, q: q}
}

// appendJobs enqueues n jobs, one call (one transaction) each.
func (h *headNode) appendJobs(t *testing.T, n int) {
	t.Helper()
	for range n {
		h.n++
		if _, err := h.q.Enqueue(context.Background(), queue.Job{TenantID: "acme", Kind: "k",
			Payload: fmt.Appendf(nil, `{"node":%q,"n":%d}`, h.name, h.n)}); err != nil {
			t.Fatal(err)
		}
	}
}

// headOf reads chain_heads' entry_count for acme/"" and checks that the
// row names that entry of the log exactly.
func headOf(t *testing.T, db *postgres.DB) int64 {
	t.Helper()
	var n int64
	var named bool
	err := db.Pool.QueryRow(context.Background(), `SELECT h.entry_count, EXISTS (SELECT 1 FROM scheduler.scheduler_log l
		WHERE l.tenant_id = h.tenant_id AND l.partition_key = h.partition_key AND l.chain_pos = h.entry_count - 1
		AND l.link = h.last_link AND l.t_hlc = h.last_t_hlc)
		FROM scheduler.chain_heads h WHERE tenant_id = 'acme' AND partition_key = ''`).Scan(&n, &named)
	if err != nil {
		t.Fatal(err)
	}
	if !named {
		t.Fatalf("chain_heads (entry_count %d) does not name the log's entry at chain_pos %d", n, n-1)
	}
	return n
}

func verifyChain(t *testing.T, db *postgres.DB, entries int64) {
	t.Helper()
	v := audit.Verifier{Store: db.AuditStore(), NoStoredCheckpoints: true}
	res, err := v.VerifyChain(context.Background(), chain.Key{TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Valid || res.EntriesChecked != entries {
		t.Fatalf("chain: valid %v, %d entries checked (want %d), issues %v", res.Valid, res.EntriesChecked, entries, res.Issues)
	}
}

// An append reads its predecessor from the log, so chain_heads is not
// written by every transaction (issue 13: the hot row), and it is brought
// up to date on Close.
func TestChainHeadsAreNotRewrittenPerAppend(t *testing.T) {
	url := testdb.NewDatabase(t)
	testdb.OpenMigrated(t, postgres.Open, url)
	a := newHeadNode(t, url, "node-a", time.Hour)
	a.appendJobs(t, 50)
	if n := headOf(t, a.db); n != 1 {
		t.Fatalf("after 50 appends in one refresh interval chain_heads names entry %d; want the first append's only", n-1)
	}
	verifyChain(t, a.db, 50) // each append linked to the log's last entry
	if err := a.db.Close(); err != nil {
		t.Fatal(err)
	}
	check := testdb.Open(t, postgres.Open, url)
	if n := headOf(t, check); n != 50 {
		t.Fatalf("after Close chain_heads names entry %d; want the last, 49", n-1)
	}
}

// Between appends the timer writes the newest head an interval later.
func TestDeferredChainHeadIsWrittenByTheTimer(t *testing.T) {
	url := testdb.NewDatabase(t)
	testdb.OpenMigrated(t, postgres.Open, url)
	a := newHeadNode(t, url, "node-a", 20*time.Millisecond)
	// The cache's clock stands still, so every append after the first is
	// within the interval whatever the machine's pace.
	stopped := time.Now()
	a.db.SetHeadClock(func() time.Time { return stopped })
	flushed := make(chan struct{}, 16)
	a.db.OnHeadsFlushed(func() { flushed <- struct{}{} })
	a.appendJobs(t, 3) // the first writes the head, the others are deferred
	select {
	case <-flushed:
	case <-time.After(testsignal.Timeout):
		t.Fatalf("no timer write of chain_heads within %v", testsignal.Timeout)
	}
	if n := headOf(t, a.db); n != 3 {
		t.Fatalf("after the timer chain_heads names entry %d; want the last, 2", n-1)
	}
}

// Two nodes append to one chain: a node's deferred head, written after
// the other's newer one, does not move the row back; and a deferred head
// whose entry was removed (tampering) is not written.
func TestDeferredChainHeadsNeverMoveBackOrPastTheLog(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	testdb.OpenMigrated(t, postgres.Open, url)
	a := newHeadNode(t, url, "node-a", time.Hour)
	b := newHeadNode(t, url, "node-b", time.Hour)
	a.appendJobs(t, 2) // a writes entry 0, defers 1
	b.appendJobs(t, 3) // b writes entry 2, defers 3, 4
	a.appendJobs(t, 1) // a defers 5
	b.appendJobs(t, 2) // b defers 6, 7
	if n := headOf(t, a.db); n != 3 {
		t.Fatalf("chain_heads names entry %d; want 2, the last written", n-1)
	}
	verifyChain(t, a.db, 8)
	if err := b.db.Close(); err != nil { // writes 7
		t.Fatal(err)
	}
	if err := a.db.Close(); err != nil { // holds 5: older, not written
		t.Fatal(err)
	}
	check := testdb.Open(t, postgres.Open, url)
	if n := headOf(t, check); n != 8 {
		t.Fatalf("after both nodes closed chain_heads names entry %d; want 7", n-1)
	}

	c := newHeadNode(t, url, "node-c", time.Hour)
	c.appendJobs(t, 3) // c writes entry 8, defers 9, 10
	if _, err := check.Pool.Exec(ctx, `DELETE FROM scheduler.scheduler_log WHERE tenant_id = 'acme' AND chain_pos >= 9`); err != nil {
		t.Fatal(err)
	}
	if err := c.db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := headOf(t, check); n != 9 {
		t.Fatalf("after the tail was removed chain_heads names entry %d; want 8, not a removed one", n-1)
	}
}
