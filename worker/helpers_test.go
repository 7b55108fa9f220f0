package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
	"github.com/ordo-sched/ordo/worker"
)

// t0 is 2024-01-01T00:00:00Z, on a minute (and hour) boundary, which the
// periodic tests rely on.
const t0 = 1_704_067_200_000

// waitFor bounds every wait for something that should happen: the one
// shared timeout of every test.
const waitFor = testsignal.Timeout

// env is one backend, migrated and empty, with a fake wall clock that
// every queue made from it shares.
type env struct {
	t       *testing.T
	name    string
	backend driver.Driver
	state   hlc.StateStore
	wall    *hlc.ManualClock
	url     string // PostgreSQL only
	// count runs a count(*) query with one argument, written for the
	// backend at hand.
	count func(ctx context.Context, sql string, arg any) (int, error)
}

// backends runs fn as a parallel subtest on PostgreSQL and on SQLite.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, newPostgresEnv(t))
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newSQLiteEnv(t))
	})
}

func newPostgresEnv(t *testing.T) *env {
	t.Helper()
	url := testdb.NewDatabase(t)
	db := testdb.OpenMigrated(t, postgres.Open, url)
	return &env{t: t, name: "postgres", backend: db, state: db.HLCState(), wall: hlc.NewManualClock(t0), url: url,
		count: func(ctx context.Context, sql string, arg any) (int, error) {
			var n int
			err := db.Pool.QueryRow(ctx, sql, arg).Scan(&n)
			return n, err
		}}
}

func newSQLiteEnv(t *testing.T) *env {
	t.Helper()
	db := testdb.OpenMigrated(t, sqlite.Open, testdb.SQLitePath(t))
	var b driver.Driver = db
	wall := hlc.NewManualClock(t0)
	db.Now = func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
	return &env{t: t, name: "sqlite", backend: b, state: db.HLCState(), wall: wall,
		count: func(ctx context.Context, sql string, arg any) (int, error) {
			var n int
			err := db.SQL.QueryRowContext(ctx, sqliteSQL(sql), arg).Scan(&n)
			return n, err
		}}
}

func openPostgres(url string) (*postgres.DB, error) { return postgres.Open(context.Background(), url) }

// sqliteSQL turns the PostgreSQL spelling of the tests' few queries into
// SQLite's: no schema, ? placeholders.
func sqliteSQL(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "scheduler.", ""), "$1", "?")
}

func (e *env) now() time.Time { return time.UnixMilli(e.wall.UnixMilli()) }

// queueOn returns a queue over b for node, on the shared fake clock, in
// HLC-only mode with verification on dequeue.
func (e *env) queueOn(b driver.Driver, node string) *queue.Queue {
	e.t.Helper()
	ctx := context.Background()
	clock, err := hlc.New(ctx, hlc.Config{Node: node, Wall: e.wall, Store: e.state})
	if err != nil {
		e.t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{
		Backend: b, Clock: clock, Now: e.now,
		Options: queue.Options{EnableHlcOrdering: true, VerifyOnDequeue: true},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

// queue returns a queue for node over the env's backend.
func (e *env) queue(node string) *queue.Queue { return e.queueOn(e.backend, node) }

// jobCount counts the jobs of kind.
func (e *env) jobCount(kind string) int {
	e.t.Helper()
	n, err := e.count(context.Background(), `SELECT count(*) FROM scheduler.job_state WHERE kind = $1`, kind)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// recorder keeps every event of the clients it is attached to and lets a
// test wait for one (a testsignal.Recorder of tagged events).
type recorder struct {
	rec *testsignal.Recorder[tagged]
}

type tagged struct {
	client string
	worker.Event
}

func newRecorder() *recorder {
	rec := testsignal.New[tagged]()
	rec.Format = func(e tagged) string {
		if e.Type == worker.EventLeaseExtended {
			return ""
		}
		return fmt.Sprintf("%s %s job=%s kind=%s attempt=%d err=%v retried=%v", e.client, e.Type, short(e.Lease.JobID), e.Lease.Kind, e.Lease.Attempt, e.Err, e.Retried)
	}
	return &recorder{rec: rec}
}

func (r *recorder) hook(client string) func(worker.Event) {
	return func(e worker.Event) { r.rec.Record(tagged{client, e}) }
}

// await returns the first event, past or future, that matches, or fails
// the test after waitFor.
func (r *recorder) await(t *testing.T, what string, match func(tagged) bool) tagged {
	t.Helper()
	return r.rec.Await(t, what, match)
}

func (r *recorder) all(match func(tagged) bool) []tagged { return r.rec.All(match) }

func (r *recorder) dump() string { return r.rec.Dump() }

func short(id uuid.UUID) string { return id.String()[:8] }

// is matches events of type typ for job id (any job when id is zero).
func is(typ worker.EventType, id uuid.UUID) func(tagged) bool {
	return func(e tagged) bool { return e.Type == typ && (id == uuid.UUID{} || e.Lease.JobID == id) }
}

// isAttempt is is, for one attempt.
func isAttempt(typ worker.EventType, id uuid.UUID, attempt int) func(tagged) bool {
	return func(e tagged) bool { return is(typ, id)(e) && e.Lease.Attempt == attempt }
}

// testConfig is a client configuration with timers short enough for tests
// (real time) and leases and leadership long on the fake clock, so that
// only the test moves them.
func testConfig(w *worker.Workers, rec *recorder, name string, logs *syncBuffer) worker.Config {
	return worker.Config{
		Workers: w, ID: name, MaxWorkers: 4,
		LeaseFor: 30 * time.Second, HeartbeatInterval: 25 * time.Millisecond,
		PollInterval: 25 * time.Millisecond, FetchCooldown: 5 * time.Millisecond,
		MaintenanceInterval: 25 * time.Millisecond, LeaderTTL: 10 * time.Second,
		TimeoutGrace: 100 * time.Millisecond,
		OnEvent:      rec.hook(name),
		Logger:       slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// handling is the Workers of a test that runs one kind, A, with fn.
func handling[A worker.Args](fn func(context.Context, *worker.Job[A]) error, opts ...worker.KindOptions) *worker.Workers {
	w := worker.NewWorkers()
	worker.AddWorker(w, worker.WorkFunc[A](fn), opts...)
	return w
}

// succeed is the handler of jobs that only have to run.
func succeed[A worker.Args](context.Context, *worker.Job[A]) error { return nil }

// nodeA is the setup of a test with one client: its queue on node-a, a
// recorder of its events, and testConfig's configuration (client "a")
// running w, for the test to adjust before it starts the client.
func (e *env) nodeA(t *testing.T, w *worker.Workers) (*queue.Queue, *recorder, worker.Config) {
	rec := newRecorder()
	return e.queue("node-a"), rec, testConfig(w, rec, "a", logs(t))
}

// startClient creates and starts a client, and stops it (briefly) when
// the test ends. Its log is printed if the test fails.
func startClient(t *testing.T, q *queue.Queue, cfg worker.Config) *worker.Client {
	t.Helper()
	c := newClient(t, q, cfg)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func newClient(t *testing.T, q *queue.Queue, cfg worker.Config) *worker.Client {
	t.Helper()
	c, err := worker.NewClient(q, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// syncBuffer collects a client's log, shown when the test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func logs(t *testing.T) *syncBuffer {
	b := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", b.String())
		}
	})
	return b
}

// get reads a job, failing the test on error.
func get(t *testing.T, q *queue.Queue, id uuid.UUID) queue.JobInfo {
	t.Helper()
	info, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// insert enqueues args for tenant "acme" through c.
func insert(t *testing.T, c *worker.Client, args worker.Args, opts *worker.InsertOpts) uuid.UUID {
	t.Helper()
	res, err := c.Insert(context.Background(), "acme", args, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.JobID
}
