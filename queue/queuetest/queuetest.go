// Package queuetest is the conformance suite every driver.Driver must pass.
//
// ordo has two backends, store/postgres and store/sqlite, behind one
// interface, and a user must be able to move from one to the other (embedded
// SQLite in development, PostgreSQL in production) without a job running
// twice, vanishing, or coming out in a different order. Each backend's own
// tests check its SQL; this suite checks the behaviour a user relies on,
// through the public queue API, identically on both: which tables each mode
// of the HLC migration guide writes, dequeue order, every switch between
// modes with jobs in flight, chain integrity, deduplication, group commit,
// input validation, leases and fencing, retries, strict partitions,
// backfill, rollback drain, verification on dequeue, several nodes on one
// database, a closed database, and enqueueing in a caller's transaction.
//
// A backend's test calls Run with a function that creates a fresh, empty,
// migrated database for every subtest and describes how to reach it:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queuetest.Target { ... })
//	}
//
// Time never passes by itself in the suite: every queue runs on an
// hlc.ManualClock that the tests move, so the suite does not sleep and its
// results do not depend on the machine's speed.
package queuetest

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

// Run runs the suite. newTarget is called once per subtest and must return
// a fresh, empty, migrated database.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	groups := []struct {
		name string
		fn   func(t *testing.T, newTarget func(t *testing.T) Target)
	}{
		{"Modes", testModes},
		{"Switches", testSwitches},
		{"Options", testOptions},
		{"EnqueueResults", testEnqueueResults},
		{"EnqueueManyThousand", testEnqueueManyThousand},
		{"Dedup", testDedup},
		{"GroupCommit", testGroupCommit},
		{"GroupCommitDuplicates", testGroupCommitDuplicates},
		{"BadInput", testBadInput},
		{"BatchOrder", testBatchOrder},
		{"DequeueFilters", testDequeueFilters},
		{"ConcurrentWorkers", testConcurrentWorkers},
		{"LeasesAndFencing", testLeases},
		{"Retries", testRetries},
		{"RunAt", testRunAt},
		{"StrictPartitions", testStrictPartitions},
		{"StrictPartitionsConcurrent", testStrictConcurrent},
		{"FairTenants", testFairTenants},
		{"Leadership", testLeadership},
		{"Backfill", testBackfill},
		{"RollbackDrain", testRollbackDrain},
		{"VerifyOnDequeue", testVerifyOnDequeue},
		{"VerifyNoFalsePositives", testVerifyNoFalsePositives},
		{"MultiNode", testMultiNode},
		{"ClosedDatabase", testClosed},
		{"EnqueueTx", testEnqueueTx},
		{"PausedQueues", testPausedQueues}, // operator state (ops.go)
		{"RetryJob", testRetryJob},
		{"OperatorRecords", testOperatorRecords},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) { g.fn(t, newTarget) })
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
		t.Fatalf("queuetest: Target %q is incomplete: Open, DB, Table and Placeholder are required", tg.Name)
	}
	// A deadlocked backend fails the subtest instead of hanging the run.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return &harness{t: t, tg: tg, ctx: ctx}
}

// sql expands {table} and ? in a portable statement.
func (h *harness) sql(q string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '?':
			n++
			b.WriteString(h.tg.Placeholder(n))
		case '{':
			end := strings.IndexByte(q[i:], '}')
			if end < 0 || !isTableName(q[i+1:i+end]) {
				b.WriteByte(c) // not a {table}: JSON in a literal, say
				continue
			}
			b.WriteString(h.tg.Table(q[i+1 : i+end]))
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
	res, err := h.tg.DB.ExecContext(h.ctx, h.sql(q), args...)
	if err != nil {
		h.t.Fatalf("%s: %v", q, err)
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
	wall := hlc.NewManualClock(wallMs)
	clock, err := hlc.New(h.ctx, hlc.Config{Node: name, Wall: wall})
	if err != nil {
		h.t.Fatal(err)
	}
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
	t.Fatalf("queuetest: cannot read %T %v as a time", v, v)
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
