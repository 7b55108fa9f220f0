// Package drivertest is the one conformance suite every driver.Driver
// must pass, with one entry point (Run) and one target shape (Target).
//
// ordo has two backends, store/postgres and store/sqlite, behind one
// contract, and a user must be able to move from one to the other
// (embedded SQLite in development, PostgreSQL in production) without a job
// running twice, vanishing, or coming out in a different order. The suite
// checks the behaviour a user relies on, through the public queue and
// audit APIs, identically on both, grouped by area: enqueue and chains
// (deduplication, group commit, input validation, a caller's transaction,
// several nodes on one database); lease and transitions (dequeue order and
// filters, leases and fencing, retries, strict partitions, fair tenants,
// leadership, VerifyOnDequeue, a closed database); modes and
// reconciliation (which tables each mode of the HLC migration guide
// writes, every switch with jobs in flight, backfill, rollback drain);
// listing; the audit store (the verifier against raw-SQL tampering,
// checkpoints, snapshots, proofs); tokens; operator state; the HLC state
// store; and capabilities (what a backend declares it lacks it answers
// with driver.ErrNotSupported). Tests of what only one dialect has (query
// plans, COPY encoding) stay beside that backend.
//
// A backend's test calls Run with a function that creates a fresh, empty,
// migrated database for every subtest and describes how to reach it:
//
//	func TestDriver(t *testing.T) {
//		drivertest.Run(t, func(t *testing.T) drivertest.Target { ... })
//	}
//
// Time never passes by itself in the suite: every queue runs on an
// hlc.ManualClock that the tests move, so the suite does not sleep and its
// results do not depend on the machine's speed.
package drivertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc/hlctest"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// Target is one fresh, migrated database and the ways to reach it.
type Target struct {
	// Name names the backend in messages: "postgres" or "sqlite".
	Name string
	// Open returns a new backend handle to the target's database, closed
	// when the test ends. Every call opens the same database; the suite
	// opens several handles to play several nodes, and one more after
	// closing a handle.
	Open func(t *testing.T) driver.Driver
	// DB is a raw connection to the same database, for inspection and
	// tampering. The suite writes portable SQL with {table} for a table
	// name (lower case and _ only; expanded by Table) and ? for a parameter (expanded by
	// Placeholder), casts UUIDs and JSON to text with CAST(x AS TEXT), and
	// reads times as time.Time or as Unix milliseconds (int64).
	DB *sql.DB
	// Table maps a table name to its qualified name: "jobs" is
	// "scheduler.jobs" on PostgreSQL and "jobs" on SQLite.
	Table func(name string) string
	// Placeholder is the n-th (1-based) parameter: "$1" or "?".
	Placeholder func(n int) string
	// Time converts a time to what the database's timestamp columns take
	// (a time.Time on PostgreSQL, Unix milliseconds on SQLite).
	Time func(time.Time) any
	// Begin starts a transaction of the kind the backend's EnqueueTx takes
	// (a pgx.Tx, a *sql.Tx) on b, a handle Open returned, as a user would
	// on the handle their queue runs on. Nil when the backend cannot
	// enqueue in a caller's transaction.
	Begin func(t *testing.T, b driver.Driver) Tx
}

// Tx is a caller's transaction, for Queue.EnqueueTx.
type Tx struct {
	Tx       any // passed to Queue.EnqueueTx
	Exec     func(ctx context.Context, sql string, args ...any) error
	Commit   func(ctx context.Context) error
	Rollback func(ctx context.Context) error
}

// Run runs the whole suite, grouped by area. newTarget is called once per
// subtest and must return a fresh, empty, migrated database.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	type test struct {
		name string
		fn   func(t *testing.T, newTarget func(t *testing.T) Target)
	}
	areas := []struct {
		name  string
		tests []test
	}{
		{"EnqueueAndChains", []test{
			{"EnqueueResults", testEnqueueResults},
			{"EnqueueManyThousand", testEnqueueManyThousand},
			{"Dedup", testDedup},
			{"GroupCommit", testGroupCommit},
			{"GroupCommitDuplicates", testGroupCommitDuplicates},
			{"BadInput", testBadInput},
			{"BatchOrder", testBatchOrder},
			{"EnqueueTx", testEnqueueTx},
			{"IdempotencyConflict", testIdempotencyConflict},
			{"MultiNode", testMultiNode},
			{"StoredRows", testStoredRows},
			{"DedupAcrossSides", testDedupAcrossSides},
			{"EnqueueTxWrongType", testEnqueueTxWrongType},
			{"Metadata", testMetadata},
		}},
		{"LeaseAndTransitions", []test{
			{"DequeueFilters", testDequeueFilters},
			{"ConcurrentWorkers", testConcurrentWorkers},
			{"LeasesAndFencing", testLeases},
			{"Retries", testRetries},
			{"AttemptHistory", testAttemptHistory},
			{"RunAt", testRunAt},
			{"StrictPartitions", testStrictPartitions},
			{"StrictPartitionsConcurrent", testStrictConcurrent},
			{"FairTenants", testFairTenants},
			{"Leadership", testLeadership},
			{"VerifyOnDequeue", testVerifyOnDequeue},
			{"VerifyNoFalsePositives", testVerifyNoFalsePositives},
			{"ClosedDatabase", testClosed},
			{"ClosedBackendCalls", testClosedBackendCalls},
			{"StoredLeaseState", testStoredLeaseState},
			{"TenantFence", testTenantFence},
			{"StrictScheduledHead", testStrictScheduledHead},
			{"ChainEntries", testChainEntries},
			{"LeaseTokens", testLeaseTokens},
			{"ConcurrentProducersAndWorkers", testConcurrentProducersAndWorkers},
		}},
		{"ModesAndReconciliation", []test{
			{"Modes", testModes},
			{"Switches", testSwitches},
			{"Options", testOptions},
			{"Backfill", testBackfill},
			{"RollbackDrain", testRollbackDrain},
			{"BackfillStaleListing", testBackfillStaleListing},
			{"DrainRows", testDrainRows},
			{"AttemptHistoryMigrates", testAttemptHistoryMigrates},
			{"MetadataMigrates", testMetadataMigrates},
		}},
		{"Listing", []test{
			{"ListAndCount", func(t *testing.T, nt func(t *testing.T) Target) {
				runListing(t, func(t *testing.T) Backend { return nt(t).Open(t) })
			}},
			{"PayloadSearch", testPayloadSearch},
			{"SearchWindowTies", testSearchWindowTies},
			{"RecentKinds", testRecentKinds},
		}},
		{"AuditStore", []test{{"VerifyAndTamper", runAudit}}},
		{"Tokens", []test{{"Tokens", func(t *testing.T, nt func(t *testing.T) Target) { testTokens(t, nt(t).Open(t)) }}}},
		{"Sessions", []test{{"Sessions", func(t *testing.T, nt func(t *testing.T) Target) { testSessions(t, nt(t).Open(t)) }}}},
		{"Operations", []test{
			{"PausedQueues", testPausedQueues},
			{"RetryJob", testRetryJob},
			{"OperatorRecords", testOperatorRecords},
			{"Retention", testRetention},
			{"Activity", testActivity},
			{"KindCounts", testKindCounts},
			{"LastPeriodic", testLastPeriodic},
		}},
		{"ClockState", []test{
			{"StateStore", func(t *testing.T, nt func(t *testing.T) Target) {
				hlctest.TestStateStore(t, func(t *testing.T) hlc.StateStore { return nt(t).Open(t).HLCState() })
			}},
			{"ClosedDatabase", testClockStateClosed},
			{"PersistedBound", testPersistedBound},
		}},
		{"Migrations", []test{{"StatusAndReapply", testMigrations}}},
		{"Capabilities", []test{{"DeclaredAsAnswered", testCapabilities}}},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) {
			for _, tc := range a.tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, newTarget) })
			}
		})
	}
}

// testClockStateClosed: the HLC state store of a closed backend fails,
// naming the node, rather than answering 0 (which would let a restarted
// clock reissue timestamps).
func testClockStateClosed(t *testing.T, newTarget func(t *testing.T) Target) {
	db := newTarget(t).Open(t)
	s := db.HLCState()
	_ = db.Close()
	if _, err := s.Load(context.Background(), "n"); err == nil || !strings.Contains(err.Error(), "node n") {
		t.Fatalf("Load on a closed database: %v; want an error naming node n", err)
	}
	if err := s.Save(context.Background(), "n", 1); err == nil {
		t.Fatal("Save on a closed database succeeded")
	}
}

// testPersistedBound: in every mode, a queue whose clock persists its
// bound in the backend's own state store enqueues, deduplicates and runs
// its jobs (the store does not wait for the enqueue holding the database),
// and after the wall clock ran past the bound several times the persisted
// bound is above the last timestamp issued.
func testPersistedBound(t *testing.T, newTarget func(t *testing.T) Target) {
	opts := slices.Clone(modes)
	opts[3].VerifyOnDequeue = true
	forModes(t, newTarget, opts, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newPersistingNode("node-a", base, o)
		var jobs []queue.Job
		for i := range 50 {
			jobs = append(jobs, job("acme", fmt.Sprint("p", i%3), i))
		}
		res := n.enqueueMany(jobs)
		if one := n.enqueue(jobs[0]); !one.Deduplicated || one.JobID != res[0].JobID || one.THLC != res[0].THLC {
			t.Errorf("dedup: %+v vs %+v", one, res[0])
		}
		for range 5 { // past the persisted bound, every time
			n.advance(3 * time.Second)
			n.enqueue(queue.Job{TenantID: "acme", Kind: "tick", Payload: fmt.Appendf(nil, `{"t":%d}`, n.wall.UnixMilli())})
		}
		bound, err := n.b.HLCState().Load(h.ctx, "node-a")
		if err != nil {
			t.Fatal(err)
		}
		if c := n.clock.Current(); o.Mode().WritesHlc() && bound <= c.Physical {
			t.Errorf("persisted bound %d is not above the last issued timestamp %v", bound, c)
		}
		n.advance(time.Second)
		done := 0
		for range 100 {
			ls := n.dequeue(queue.DequeueOptions{Limit: 7})
			if len(ls) == 0 {
				break
			}
			for _, l := range ls {
				n.complete(l)
				done++
			}
		}
		if done != 55 {
			t.Errorf("completed %d, want 55", done)
		}
	})
}

// testMigrations: on a migrated database every migration, the guide's
// 001 and 002 first, is applied, and migrating again applies nothing.
func testMigrations(t *testing.T, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	db := newTarget(t).Open(t)
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) < 3 || st[0].Name != "001_legacy_jobs.sql" || st[1].Name != "002_hlc_queue_chain.sql" {
		t.Fatalf("status = %+v", st)
	}
	for _, m := range st {
		if !m.Applied {
			t.Fatalf("migration %s not applied: %+v", m.Name, st)
		}
	}
	if again, err := db.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate applied %v, %v", again, err)
	}
}

// testCapabilities: what a backend declares it lacks, it answers with
// driver.ErrNotSupported, and what it declares it has, it does.
func testCapabilities(t *testing.T, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	listenCtx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	db := newTarget(t).Open(t)
	caps := db.Capabilities()
	ch, err := db.Listen(listenCtx)
	switch {
	case caps.Listen && err != nil:
		t.Errorf("Capabilities().Listen is true but Listen failed: %v", err)
	case !caps.Listen && !errors.Is(err, driver.ErrNotSupported):
		t.Errorf("Capabilities().Listen is false but Listen answered %v, want driver.ErrNotSupported", err)
	case caps.Listen:
		stopListening()
		for range ch { // closed once ctx ends
		}
	}
	now := time.UnixMilli(base)
	led, err := db.TryLead(ctx, driver.LeadParams{Name: "capabilities", Holder: "a", Until: now.Add(time.Minute), Now: now})
	switch {
	case caps.Leadership && (err != nil || !led):
		t.Errorf("Capabilities().Leadership is true but TryLead on a free duty = %v, %v", led, err)
	case !caps.Leadership && !errors.Is(err, driver.ErrNotSupported):
		t.Errorf("Capabilities().Leadership is false but TryLead answered %v, want driver.ErrNotSupported", err)
	}
}

// base is the fake wall clock's start: 2026-01-01T00:00:00Z.
const base int64 = 1_767_225_600_000

// modes are the rows of the guide's table, named as Mode.String names them.
var modes = []queue.Options{
	{},
	{DualWriteMode: true},
	{EnableHlcOrdering: true, DualWriteMode: true},
	{EnableHlcOrdering: true},
}

// forModes runs fn once per mode in opts, each on a fresh database.
func forModes(t *testing.T, newTarget func(t *testing.T) Target, opts []queue.Options, fn func(t *testing.T, h *harness, o queue.Options)) {
	for _, o := range opts {
		t.Run(o.Mode().String(), func(t *testing.T) {
			t.Parallel()
			fn(t, newHarness(t, newTarget), o)
		})
	}
}

// single runs fn on a fresh database as a parallel test.
func single(t *testing.T, newTarget func(t *testing.T) Target, fn func(t *testing.T, h *harness)) {
	t.Parallel()
	fn(t, newHarness(t, newTarget))
}

// harness is one subtest's database.
type harness struct {
	t   *testing.T
	tg  Target
	ctx context.Context
}

func newHarness(t *testing.T, newTarget func(t *testing.T) Target) *harness {
	t.Helper()
	tg := newTarget(t)
	if tg.Open == nil || tg.DB == nil || tg.Table == nil || tg.Placeholder == nil {
		t.Fatalf("drivertest: Target %q is incomplete: Open, DB, Table and Placeholder are required", tg.Name)
	}
	// A deadlocked backend fails the subtest instead of hanging the run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &harness{t: t, tg: tg, ctx: ctx}
}

// sql expands {table} and ? in a portable statement.
func (h *harness) sql(q string) string { return h.tg.expand(q) }

// expand writes portable SQL for the target: {table} becomes the table's
// qualified name, each ? the next placeholder.
func (tg Target) expand(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '?':
			n++
			b.WriteString(tg.Placeholder(n))
		case '{':
			end := strings.IndexByte(q[i:], '}')
			if end < 0 || !isTableName(q[i+1:i+end]) {
				b.WriteByte(c) // not a {table}: JSON in a literal, say
				continue
			}
			b.WriteString(tg.Table(q[i+1 : i+end]))
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isTableName(s string) bool {
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return s != ""
}

func (h *harness) exec(q string, args ...any) int64 {
	h.t.Helper()
	return h.tg.exec(h.t, h.ctx, q, args...)
}

// exec runs portable SQL on the raw connection and returns the rows it
// changed.
func (tg Target) exec(t *testing.T, ctx context.Context, q string, args ...any) int64 {
	t.Helper()
	res, err := tg.DB.ExecContext(ctx, tg.expand(q), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, _ := res.RowsAffected()
	return n
}

func (h *harness) count(q string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(q), args...).Scan(&n); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// rows are the row counts of the four tables of the guide.
type rows struct{ Jobs, Log, State, Heads int64 }

func (r rows) String() string {
	return fmt.Sprintf("jobs=%d scheduler_log=%d job_state=%d chain_heads=%d", r.Jobs, r.Log, r.State, r.Heads)
}

func (h *harness) rows() rows {
	h.t.Helper()
	return rows{
		Jobs:  h.count("SELECT count(*) FROM {jobs}"),
		Log:   h.count("SELECT count(*) FROM {scheduler_log}"),
		State: h.count("SELECT count(*) FROM {job_state}"),
		Heads: h.count("SELECT count(*) FROM {chain_heads}"),
	}
}

// unfinished counts jobs in pending, scheduled or running on both sides.
func (h *harness) unfinished() (legacy, hlcSide int64) {
	h.t.Helper()
	return h.count("SELECT count(*) FROM {jobs} WHERE status IN ('pending', 'scheduled', 'running')"),
		h.count("SELECT count(*) FROM {job_state} WHERE status IN ('pending', 'scheduled', 'running')")
}

// sides returns a job's raw status on the legacy and the HLC side ("" when
// the side has no row).
func (h *harness) sides(id uuid.UUID) (legacy, hlcSide string) {
	h.t.Helper()
	for _, s := range []struct {
		q   string
		out *string
	}{
		{"SELECT status FROM {jobs} WHERE id = ?", &legacy},
		{"SELECT status FROM {job_state} WHERE job_id = ?", &hlcSide},
	} {
		err := h.tg.DB.QueryRowContext(h.ctx, h.sql(s.q), id.String()).Scan(s.out)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			h.t.Fatalf("%s: %v", s.q, err)
		}
	}
	return legacy, hlcSide
}

// leaseToken returns the raw lease token of a job on one side ("" when
// none or no row).
func (h *harness) leaseToken(table, idCol string, id uuid.UUID) string {
	h.t.Helper()
	var tok sql.NullString
	err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT CAST(lease_token AS TEXT) FROM {"+table+"} WHERE "+idCol+" = ?"), id.String()).Scan(&tok)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		h.t.Fatal(err)
	}
	return tok.String
}

// node is one queue on its own backend handle and its own fake clock.
type node struct {
	h     *harness
	name  string
	q     *queue.Queue
	b     driver.Driver
	wall  *hlc.ManualClock
	clock *hlc.Clock
}

// newNode opens a backend handle and builds a queue on a ManualClock
// reading wallMs, named name, with opts; cfg may adjust the Config.
func (h *harness) newNode(name string, wallMs int64, opts queue.Options, cfg ...func(*queue.Config)) *node {
	h.t.Helper()
	clock, wall := hlctest.ManualClock(h.t, wallMs, hlc.Config{Node: name})
	b := h.tg.Open(h.t)
	c := queue.Config{Backend: b, Clock: clock, Options: opts, Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }}
	for _, f := range cfg {
		f(&c)
	}
	q, err := queue.New(h.ctx, c)
	if err != nil {
		h.t.Fatalf("queue.New(%+v) on %s: %v", opts, h.tg.Name, err)
	}
	return &node{h: h, name: name, q: q, b: b, wall: wall, clock: clock}
}

// newPersistingNode is newNode with a clock that persists its upper bound
// in the node's backend (Store: b.HLCState()), as `ordo serve` runs it: on
// a backend whose bound is written with the data, from inside the
// enqueue's own transaction.
func (h *harness) newPersistingNode(name string, wallMs int64, opts queue.Options) *node {
	h.t.Helper()
	b := h.tg.Open(h.t)
	clock, wall := hlctest.ManualClock(h.t, wallMs, hlc.Config{Node: name, Store: b.HLCState(), StoreTimeout: 2 * time.Second})
	q, err := queue.New(h.ctx, queue.Config{Backend: b, Clock: clock, Options: opts, Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		h.t.Fatalf("queue.New(%+v) on %s: %v", opts, h.tg.Name, err)
	}
	return &node{h: h, name: name, q: q, b: b, wall: wall, clock: clock}
}

// prepared builds the backend's input for j as the Queue would, created
// and due now.
func (n *node) prepared(j queue.Job) *driver.Prepared {
	n.h.t.Helper()
	canonical, err := chain.Canonicalize(j.Payload)
	if err != nil {
		n.h.t.Fatal(err)
	}
	ph, err := chain.PayloadHash(canonical)
	if err != nil {
		n.h.t.Fatal(err)
	}
	now := n.now()
	p := &driver.Prepared{TenantID: j.TenantID, PartitionKey: j.PartitionKey, Kind: j.Kind, IdempotencyKey: j.IdempotencyKey, Payload: canonical,
		PayloadHash: ph, RunAt: now, MaxAttempts: 25, Status: driver.StatusPending, CreatedAt: now}
	if p.JobID, err = chain.JobID(p.TenantID, p.PartitionKey, p.Kind, p.IdempotencyKey, ph); err != nil {
		n.h.t.Fatal(err)
	}
	return p
}

func (n *node) now() time.Time          { return time.UnixMilli(n.wall.UnixMilli()) }
func (n *node) advance(d time.Duration) { n.wall.Advance(d) }

func (n *node) enqueue(j queue.Job) queue.EnqueueResult {
	n.h.t.Helper()
	r, err := n.q.Enqueue(n.h.ctx, j)
	if err != nil {
		n.h.t.Fatalf("Enqueue(%s/%q %s): %v", j.TenantID, j.PartitionKey, j.Payload, err)
	}
	return r
}

func (n *node) enqueueMany(jobs []queue.Job) []queue.EnqueueResult {
	n.h.t.Helper()
	r, err := n.q.EnqueueMany(n.h.ctx, jobs)
	if err != nil {
		n.h.t.Fatalf("EnqueueMany(%d jobs): %v", len(jobs), err)
	}
	if len(r) != len(jobs) {
		n.h.t.Fatalf("EnqueueMany(%d jobs) returned %d results", len(jobs), len(r))
	}
	return r
}

func (n *node) dequeue(o queue.DequeueOptions) []queue.Lease {
	n.h.t.Helper()
	ls, err := n.q.Dequeue(n.h.ctx, o)
	if err != nil {
		n.h.t.Fatalf("Dequeue(%+v): %v", o, err)
	}
	return ls
}

func (n *node) complete(l queue.Lease) {
	n.h.t.Helper()
	if err := n.q.Complete(n.h.ctx, l); err != nil {
		n.h.t.Fatalf("Complete(job %s, attempt %d): %v", l.JobID, l.Attempt, err)
	}
}

func (n *node) get(id uuid.UUID) queue.JobInfo {
	n.h.t.Helper()
	info, err := n.q.Get(n.h.ctx, id)
	if err != nil {
		n.h.t.Fatalf("Get(%s): %v", id, err)
	}
	return info
}

// expectStatus checks a job's status through Get and on every side that
// holds it. A chain violation is recorded as failed on the legacy side,
// which has no such status.
func (n *node) expectStatus(id uuid.UUID, want queue.Status) queue.JobInfo {
	n.h.t.Helper()
	info := n.get(id)
	if info.Status != want {
		n.h.t.Errorf("job %s: Get says status %q, want %q (last_error %q)", id, info.Status, want, info.LastError)
	}
	legacy, hlcSide := n.h.sides(id)
	if legacy == "" && hlcSide == "" {
		n.h.t.Errorf("job %s: no row on either side", id)
	}
	wantLegacy := want
	if want == queue.StatusChainViolation {
		wantLegacy = queue.StatusFailed
	}
	if legacy != "" && queue.Status(legacy) != wantLegacy {
		n.h.t.Errorf("job %s: legacy row has status %q, want %q", id, legacy, wantLegacy)
	}
	if hlcSide != "" && queue.Status(hlcSide) != want {
		n.h.t.Errorf("job %s: job_state has status %q, want %q", id, hlcSide, want)
	}
	if info.InLegacy != (legacy != "") || info.InHLC != (hlcSide != "") {
		n.h.t.Errorf("job %s: Get says InLegacy=%v InHLC=%v, tables say legacy=%q hlc=%q", id, info.InLegacy, info.InHLC, legacy, hlcSide)
	}
	return info
}

// job is a job of kind "report" whose payload is {"n":n}.
func job(tenant, partition string, n int) queue.Job {
	return queue.Job{TenantID: tenant, PartitionKey: partition, Kind: "report", Payload: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// jobID computes the id a job must get.
func jobID(t *testing.T, j queue.Job) uuid.UUID {
	t.Helper()
	ph, err := chain.PayloadHash(j.Payload)
	if err != nil {
		t.Fatal(err)
	}
	id, err := chain.JobID(j.TenantID, j.PartitionKey, j.Kind, j.IdempotencyKey, ph)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func ids(ls []queue.Lease) []uuid.UUID {
	out := make([]uuid.UUID, len(ls))
	for i, l := range ls {
		out[i] = l.JobID
	}
	return out
}

// sameSet reports whether a and b hold the same ids, ignoring order.
func sameSet(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	x := slices.Clone(a)
	y := slices.Clone(b)
	cmp := func(p, q uuid.UUID) int { return strings.Compare(p.String(), q.String()) }
	slices.SortFunc(x, cmp)
	slices.SortFunc(y, cmp)
	return slices.Equal(x, y)
}

// counter reads a Prometheus counter. (prometheus/testutil would do, but
// it pulls in a module the project does not otherwise need.)
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// millis converts a time as read from either database to Unix milliseconds.
func millis(t *testing.T, v any) int64 {
	t.Helper()
	switch x := v.(type) {
	case time.Time:
		return x.UnixMilli()
	case int64:
		return x
	}
	t.Fatalf("drivertest: cannot read %T %v as a time", v, v)
	return 0
}

// noPanic runs f and turns a panic into a test failure naming what.
func noPanic(t *testing.T, what string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}
