package sqlite_test

// Tests of what only the SQLite backend has, or does differently from the
// PostgreSQL backend, and the backend's benchmarks (on the tests'
// fixture). Everything else about the backend is checked by the
// conformance suite (driver/drivertest, run by driver_test.go) on both
// backends; each test here says why it is not there.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/sqlite"
)

const t0 = 1_704_067_200_000 // 2024-01-01T00:00:00Z in Unix ms

// fixture is a migrated database with a manual wall clock and an HLC
// whose state store is the database itself, as `ordo serve` runs it.
type fixture struct {
	t     testing.TB
	db    *sqlite.DB
	wall  *hlc.ManualClock
	clock *hlc.Clock
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := openMigrated(t)
	clock, wall := hlctest.ManualClock(t, t0, hlc.Config{Node: "node-a", Store: db.HLCState(), StoreTimeout: 2 * time.Second})
	return &fixture{t: t, db: db, wall: wall, clock: clock}
}

func (f *fixture) now() time.Time { return time.UnixMilli(f.wall.UnixMilli()).UTC() }

// job builds a prepared job as the Queue would.
func (f *fixture) job(tenant, partition, kind, payload string, mods ...func(*driver.Prepared)) *driver.Prepared {
	f.t.Helper()
	canonical, err := chain.Canonicalize([]byte(payload))
	if err != nil {
		f.t.Fatal(err)
	}
	hash, err := chain.PayloadHash(canonical)
	if err != nil {
		f.t.Fatal(err)
	}
	now := f.now()
	p := &driver.Prepared{TenantID: tenant, PartitionKey: partition, Kind: kind, Payload: canonical, PayloadHash: hash,
		RunAt: now, MaxAttempts: 25, Status: driver.StatusPending, CreatedAt: now}
	for _, m := range mods {
		m(p)
	}
	if p.JobID, err = chain.JobID(p.TenantID, p.PartitionKey, p.Kind, p.IdempotencyKey, p.PayloadHash); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) enqueue(legacy, hlcSide bool, jobs ...*driver.Prepared) []driver.EnqueueResult {
	f.t.Helper()
	res, err := f.db.Enqueue(context.Background(), driver.NewEnqueueBatch(jobs, legacy, hlcSide, f.clock, f.now()))
	if err != nil {
		f.t.Fatal(err)
	}
	if len(res) != len(jobs) {
		f.t.Fatalf("%d results for %d jobs", len(res), len(jobs))
	}
	return res
}

func (f *fixture) dequeue(p driver.DequeueParams) []driver.Lease {
	f.t.Helper()
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.Owner == "" {
		p.Owner = "worker-1"
	}
	p.Token = uuid.New()
	p.Now = f.now()
	p.LeaseUntil = p.Now.Add(30 * time.Second)
	leases, err := f.db.Dequeue(context.Background(), p)
	if err != nil {
		f.t.Fatal(err)
	}
	return leases
}

func count(t *testing.T, db *sqlite.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEnqueueDoesNotWaitForTheClockStore is SQLite-only: the backend has
// one connection, and the clock writes its bound (data-bound HLC state)
// from inside the enqueue's transaction, which holds it; the store must
// not wait for itself. (The suite's ClockState/PersistedBound checks the
// bound itself on both backends.)
func TestEnqueueDoesNotWaitForTheClockStore(t *testing.T) {
	ctx := context.Background()
	for _, opts := range []queue.Options{
		{}, {DualWriteMode: true}, {EnableHlcOrdering: true, DualWriteMode: true}, {EnableHlcOrdering: true, VerifyOnDequeue: true},
	} {
		t.Run(opts.Mode().String(), func(t *testing.T) {
			f := newFixture(t)
			q, err := queue.New(ctx, queue.Config{Backend: f.db, Clock: f.clock, Options: opts, Now: f.now})
			if err != nil {
				t.Fatal(err)
			}
			var jobs []queue.Job
			for i := range 50 {
				jobs = append(jobs, queue.Job{TenantID: "acme", PartitionKey: fmt.Sprint("p", i%3), Kind: "report", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			}
			// A store that waited for the connection the enqueue holds would
			// wait until the context ends: the deadline turns that deadlock
			// into an error instead of a hung test (no timing is asserted, so
			// a loaded machine cannot fail it).
			deadline, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if _, err := q.EnqueueMany(deadline, jobs); err != nil {
				t.Fatalf("EnqueueMany: %v (the HLC state store waited for the enqueue's connection?)", err)
			}
		})
	}
}

// TestDedupRepeatInOneBatch is SQLite-only because the PostgreSQL backend
// differs: a backend batch (both sides) holding the same job twice fails
// there with a unique violation on job_state_pkey, while the SQLite
// backend writes the job once and reports the repeat as deduplicated with
// the first one's entry. (The Queue removes such repeats before the
// backend sees them, so the suite's Dedup passes on both.)
func TestDedupRepeatInOneBatch(t *testing.T) {
	f := newFixture(t)
	j := f.job("acme", "", "k", `{"n":2}`)
	r := f.enqueue(true, true, j, j)
	if r[0].Deduplicated || r[0].THLC == "" || !r[1].Deduplicated || r[1].THLC != r[0].THLC || r[1].Link != r[0].Link {
		t.Fatalf("repeat in one batch: %+v then %+v", r[0], r[1])
	}
	for _, q := range []string{`SELECT count(*) FROM jobs`, `SELECT count(*) FROM job_state`, `SELECT count(*) FROM scheduler_log`} {
		if n := count(t, f.db, q); n != 1 {
			t.Fatalf("%s = %d, want 1", q, n)
		}
	}
	checkChains(t, f.db)
}

// TestDriftRefusalKeepsTheBoundWithTheData is SQLite-only: it is about the
// data-bound HLC state (the bound commits in the transaction of the data
// it covers, so a refused batch leaves no bound) and the backend's error
// wording. (That a refused batch writes nothing is in the suite's
// MultiNode, on both backends.)
func TestDriftRefusalKeepsTheBoundWithTheData(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// Another node, ten minutes ahead, writes the head of acme's chain.
	ahead, _ := hlctest.ManualClock(t, t0+10*60*1000, hlc.Config{Node: "node-b", Store: f.db.HLCState()})
	if _, err := f.db.Enqueue(ctx, driver.NewEnqueueBatch([]*driver.Prepared{f.job("acme", "", "k", `{"n":0}`)}, true, true, ahead, f.now())); err != nil {
		t.Fatal(err)
	}
	// This node's first timestamp (chain "aaa", locked first) moves its
	// persisted bound inside the transaction; the second chain then fails.
	first, second := f.job("aaa", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`)
	_, err := f.db.Enqueue(ctx, driver.NewEnqueueBatch([]*driver.Prepared{second, first}, true, true, f.clock, f.now()))
	var drift *hlc.DriftError
	if !errors.Is(err, hlc.ErrClockDrift) || !errors.As(err, &drift) || !strings.HasPrefix(err.Error(), "sqlite: enqueue: ") {
		t.Fatalf("enqueue onto a chain ten minutes ahead: %v, want a wrapped *hlc.DriftError", err)
	}
	for _, q := range []string{`SELECT count(*) FROM jobs`, `SELECT count(*) FROM job_state`, `SELECT count(*) FROM scheduler_log`, `SELECT count(*) FROM chain_heads`} {
		if n := count(t, f.db, q); n != 1 {
			t.Fatalf("%s = %d after the refused batch, want 1", q, n)
		}
	}
	// The bound commits with the data it covers: node-b's committed entry
	// is below node-b's bound; node-a stored nothing, so it has none.
	bound, err := f.db.HLCState().Load(ctx, "node-b")
	if err != nil || bound <= ahead.Current().Physical {
		t.Fatalf("node-b's persisted bound %d (%v) is not above its stored timestamp %v", bound, err, ahead.Current())
	}
	if bound, err := f.db.HLCState().Load(ctx, "node-a"); err != nil || bound != 0 {
		t.Fatalf("node-a's bound is %d (%v) after a refused batch that stored nothing", bound, err)
	}
}

// TestEnqueueTxBoundCommitsWithTheCaller is SQLite-only: with data-bound
// HLC state, the clock's bound is written in the caller's transaction and
// commits with it. (The rest of EnqueueTx is in the suite's EnqueueTx and
// EnqueueTxWrongType, on both backends.)
func TestEnqueueTxBoundCommitsWithTheCaller(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	q, err := queue.New(ctx, queue.Config{Backend: f.db, Clock: f.clock, Options: queue.Options{DualWriteMode: true}, Now: f.now})
	if err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := f.db.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := q.EnqueueTx(ctx, tx, queue.Job{TenantID: "acme", Kind: "ship", Payload: []byte(`{"order":1}`)})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].THLC == "" || res[0].Deduplicated {
			t.Fatalf("EnqueueTx: %+v", res[0])
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.db.GetJob(ctx, driver.JobRef{JobID: res[0].JobID})
		if commit != (err == nil) || !commit && !errors.Is(err, driver.ErrJobNotFound) {
			t.Fatalf("commit=%v: GetJob: %v", commit, err)
		}
		if commit {
			// The clock's bound committed with the caller's transaction.
			ts, err := hlc.Parse(res[0].THLC)
			if err != nil {
				t.Fatal(err)
			}
			bound, err := f.db.HLCState().Load(ctx, "node-a")
			if err != nil || bound <= ts.Physical {
				t.Fatalf("bound %d (%v) after the caller committed %s", bound, err, res[0].THLC)
			}
		}
	}
	checkChains(t, f.db)
}

// TestClockStoreOnAnotherHandle is SQLite-only (a second handle on the
// same file, and its write lock): a clock persisting through one handle
// while the enqueue runs on another handle to the same file (as `ordo
// demo` wires its nodes) writes through the enqueue's transaction instead
// of waiting for the file's write lock.
func TestClockStoreOnAnotherHandle(t *testing.T) {
	ctx := context.Background()
	path := testdb.SQLitePath(t)
	stateDB := testdb.OpenMigrated(t, sqlite.Open, path)
	backend := testdb.Open(t, sqlite.Open, path)
	clock, wall := hlctest.ManualClock(t, t0, hlc.Config{Node: "node-a", Store: stateDB.HLCState(), StoreTimeout: 2 * time.Second})
	f := &fixture{t: t, db: backend, wall: wall, clock: clock}
	// A clock waiting for the write lock the enqueue's transaction holds
	// would wait out its StoreTimeout and fail to persist, and so fail the
	// enqueue (f.enqueue fails the test): no timing needs asserting.
	for i := range 3 {
		f.enqueue(true, true, f.job("acme", "", "k", fmt.Sprintf(`{"n":%d}`, i)))
		wall.Advance(5 * time.Second) // past the clock's reserve: the next stamp persists again
	}
	bound, err := stateDB.HLCState().Load(ctx, "node-a")
	if err != nil || bound <= clock.Current().Physical {
		t.Fatalf("bound %d (%v), last timestamp %v", bound, err, clock.Current())
	}
	checkChains(t, backend)
}

// logEntry is a scheduler_log row as stored.
type logEntry struct {
	tenant, partition, tHLC, node, payload string
	pos, createdAt                         int64
	jobID                                  uuid.UUID
	hash, link                             chain.Hash
	prev                                   []byte
	idemKey                                sql.NullString
}

// checkChains reads every chain back, recomputes every link from genesis
// with chain.Link, checks positions, t_hlc order and payload hashes, and
// that each chain_heads row names its chain's last entry.
func checkChains(t *testing.T, db *sqlite.DB) map[uuid.UUID]logEntry {
	t.Helper()
	ctx := context.Background()
	rows, err := db.SQL.QueryContext(ctx, `SELECT tenant_id, partition_key, chain_pos, job_id, t_hlc, payload_hash, prev_link, link,
		payload, node_id, created_at, idempotency_key FROM scheduler_log ORDER BY tenant_id, partition_key, chain_pos`)
	if err != nil {
		t.Fatal(err)
	}
	chains := map[chain.Key][]logEntry{}
	byJob := map[uuid.UUID]logEntry{}
	for rows.Next() {
		var e logEntry
		var hash, link []byte
		if err := rows.Scan(&e.tenant, &e.partition, &e.pos, &e.jobID, &e.tHLC, &hash, &e.prev, &link, &e.payload, &e.node, &e.createdAt, &e.idemKey); err != nil {
			t.Fatal(err)
		}
		e.hash, _ = chain.HashFromBytes(hash)
		e.link, _ = chain.HashFromBytes(link)
		k := chain.Key{TenantID: e.tenant, PartitionKey: e.partition}
		chains[k] = append(chains[k], e)
		if _, dup := byJob[e.jobID]; dup {
			t.Fatalf("job %s has two log entries", e.jobID)
		}
		byJob[e.jobID] = e
	}
	rows.Close()
	for k, es := range chains {
		var prev chain.Hash
		for i, e := range es {
			if e.pos != int64(i) {
				t.Fatalf("chain %v: entry %d at chain_pos %d", k, i, e.pos)
			}
			if i == 0 && e.prev != nil {
				t.Fatalf("chain %v: genesis has prev_link %x, want NULL", k, e.prev)
			}
			if i > 0 && !bytes.Equal(e.prev, prev[:]) {
				t.Fatalf("chain %v pos %d: prev_link %x, want %x", k, i, e.prev, prev)
			}
			if i > 0 && e.tHLC <= es[i-1].tHLC {
				t.Fatalf("chain %v pos %d: t_hlc %s not after %s", k, i, e.tHLC, es[i-1].tHLC)
			}
			if h, _ := chain.PayloadHash([]byte(e.payload)); h != e.hash {
				t.Fatalf("chain %v pos %d: payload_hash does not match the payload", k, i)
			}
			link, err := chain.Link(prev, e.jobID, e.tHLC, e.hash)
			if err != nil {
				t.Fatal(err)
			}
			if link != e.link {
				t.Fatalf("chain %v pos %d: stored link %s, recomputed %s", k, i, e.link, link)
			}
			prev = link
		}
		var headLink []byte
		var headTHLC string
		var count int64
		if err := db.SQL.QueryRowContext(ctx, `SELECT last_link, last_t_hlc, entry_count FROM chain_heads WHERE tenant_id = ? AND partition_key = ?`,
			k.TenantID, k.PartitionKey).Scan(&headLink, &headTHLC, &count); err != nil {
			t.Fatalf("chain %v: head: %v", k, err)
		}
		last := es[len(es)-1]
		if !bytes.Equal(headLink, last.link[:]) || headTHLC != last.tHLC || count != int64(len(es)) {
			t.Fatalf("chain %v: head (%x, %s, %d), want (%s, %s, %d)", k, headLink, headTHLC, count, last.link, last.tHLC, len(es))
		}
	}
	var heads int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM chain_heads`).Scan(&heads); err != nil || heads != len(chains) {
		t.Fatalf("%d chain heads for %d chains (%v)", heads, len(chains), err)
	}
	return byJob
}

func benchJobs(b *testing.B, n, from int, now time.Time) []*driver.Prepared {
	jobs := make([]*driver.Prepared, n)
	for i := range jobs {
		payload := []byte(fmt.Sprintf(`{"n":%d}`, from+i))
		hash, _ := chain.PayloadHash(payload)
		p := &driver.Prepared{TenantID: fmt.Sprintf("tenant-%d", (from+i)%4), PartitionKey: fmt.Sprintf("p%d", (from+i)%3), Kind: "noop",
			Payload: payload, PayloadHash: hash, RunAt: now, MaxAttempts: 3, Status: driver.StatusPending, CreatedAt: now}
		p.JobID, _ = chain.JobID(p.TenantID, p.PartitionKey, p.Kind, "", hash)
		jobs[i] = p
	}
	return jobs
}

// BenchmarkEnqueue reports the cost per job of dual-write enqueues in
// batches of 1 (no group commit) and 100.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprint("batch=", size), func(b *testing.B) {
			f := newFixture(b)
			db, clock, ctx, now := f.db, f.clock, context.Background(), f.now()
			n := 0
			for b.Loop() {
				jobs := benchJobs(b, size, n, now)
				n += size
				if _, err := db.Enqueue(ctx, driver.NewEnqueueBatch(jobs, true, true, clock, now)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/job")
		})
	}
}

// BenchmarkDequeueComplete leases and completes one job at a time from a
// backlog of 10,000 (dual-write), in both read orders.
func BenchmarkDequeueComplete(b *testing.B) {
	for _, hlcOrder := range []bool{false, true} {
		for _, strict := range []bool{false, true} {
			b.Run(fmt.Sprintf("hlc=%v/strict=%v", hlcOrder, strict), func(b *testing.B) {
				f := newFixture(b)
				db, clock, ctx, now := f.db, f.clock, context.Background(), f.now()
				refill := func(from int) {
					for i := 0; i < 10_000; i += 1000 {
						if _, err := db.Enqueue(ctx, driver.NewEnqueueBatch(benchJobs(b, 1000, from+i, now), true, true, clock, now)); err != nil {
							b.Fatal(err)
						}
					}
				}
				refill(0)
				n := 10_000
				for b.Loop() {
					leases, err := db.Dequeue(ctx, driver.DequeueParams{HLCOrder: hlcOrder, StrictPartitions: strict, Limit: 1, Owner: "w",
						Token: uuid.New(), Now: now, LeaseUntil: now.Add(time.Minute)})
					if err != nil {
						b.Fatal(err)
					}
					if len(leases) == 0 {
						b.StopTimer()
						refill(n)
						n += 10_000
						b.StartTimer()
						continue
					}
					if err := db.TransitionJob(ctx, driver.Transition{JobID: leases[0].JobID, Token: leases[0].Token, Status: driver.StatusSucceeded, Now: now}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
