package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/sqlite"
)

const t0 = 1_704_067_200_000 // 2024-01-01T00:00:00Z in Unix ms

// fixture is a migrated database with a manual wall clock and an HLC
// whose state store is the database itself, as `ordo serve` runs it.
type fixture struct {
	t     *testing.T
	db    *sqlite.DB
	wall  *hlc.ManualClock
	clock *hlc.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := openMigrated(t)
	wall := hlc.NewManualClock(t0)
	clock, err := hlc.New(context.Background(), hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState(), StoreTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
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

func (f *fixture) complete(l driver.Lease) {
	f.t.Helper()
	if err := f.db.TransitionJob(context.Background(), driver.Transition{JobID: l.JobID, Token: l.Token, Status: driver.StatusSucceeded, Now: f.now()}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(id uuid.UUID) driver.JobInfo {
	f.t.Helper()
	info, err := f.db.GetJob(context.Background(), driver.JobRef{JobID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	return info
}

func withRunAt(at time.Time) func(*driver.Prepared) {
	return func(p *driver.Prepared) { p.RunAt, p.Status = at, driver.StatusScheduled }
}

func withPriority(n int) func(*driver.Prepared) { return func(p *driver.Prepared) { p.Priority = n } }

func withMaxAttempts(n int) func(*driver.Prepared) {
	return func(p *driver.Prepared) { p.MaxAttempts = n }
}

func ids(leases []driver.Lease) []uuid.UUID {
	out := make([]uuid.UUID, len(leases))
	for i, l := range leases {
		out[i] = l.JobID
	}
	return out
}

func jobIDs(jobs ...*driver.Prepared) []uuid.UUID {
	out := make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		out[i] = j.JobID
	}
	return out
}

// TestQueueSmokeAllModes runs the Queue on the backend in every mode with
// the HLC persisting its bound in the same database: the clock writes that
// bound from inside the enqueue's transaction, which holds the single
// connection, so this also guards against the store waiting for itself.
func TestQueueSmokeAllModes(t *testing.T) {
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
			start := time.Now()
			res, err := q.EnqueueMany(ctx, jobs)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("EnqueueMany took %v: the HLC state store waited for the enqueue's connection", d)
			}
			one, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "report", Payload: []byte(`{"n":0}`), PartitionKey: "p0"})
			if err != nil {
				t.Fatal(err)
			}
			if !one.Deduplicated || one.JobID != res[0].JobID || one.THLC != res[0].THLC {
				t.Fatalf("dedup: %+v vs %+v", one, res[0])
			}
			// Let the clock run past its persisted bound several times.
			for range 5 {
				f.wall.Advance(3 * time.Second)
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "tick", Payload: []byte(fmt.Sprintf(`{"t":%d}`, f.wall.UnixMilli()))}); err != nil {
					t.Fatal(err)
				}
			}
			bound, err := f.db.HLCState().Load(ctx, "node-a")
			if err != nil {
				t.Fatal(err)
			}
			if c := f.clock.Current(); opts.Mode().WritesHlc() && bound <= c.Physical {
				t.Fatalf("persisted bound %d is not above the last issued timestamp %v", bound, c)
			}
			f.wall.Advance(time.Second)
			done := 0
			for {
				leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 7})
				if err != nil {
					t.Fatal(err)
				}
				if len(leases) == 0 {
					break
				}
				for _, l := range leases {
					if err := q.Complete(ctx, l); err != nil {
						t.Fatal(err)
					}
					done++
				}
			}
			if done != 55 {
				t.Fatalf("completed %d, want 55", done)
			}
		})
	}
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

// row reads one column set of a job's row on one side.
func row(t *testing.T, db *sqlite.DB, query string, id uuid.UUID, dest ...any) bool {
	t.Helper()
	err := db.SQL.QueryRowContext(context.Background(), query, id.String()).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func count(t *testing.T, db *sqlite.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestEnqueueChainsLinkFromGenesis(t *testing.T) {
	f := newFixture(t)
	var all []*driver.Prepared
	var results []driver.EnqueueResult
	for round := range 3 {
		var batch []*driver.Prepared
		for i := range 9 {
			tenant := []string{"acme", "beta"}[i%2]
			partition := []string{"", "eu", "us"}[i%3]
			batch = append(batch, f.job(tenant, partition, "report", fmt.Sprintf(`{"round":%d,"i":%d}`, round, i)))
		}
		if round == 1 {
			batch = append(batch, f.job("acme", "eu", "mail", `{"to":"x"}`, func(p *driver.Prepared) { p.IdempotencyKey = "welcome-1" }),
				f.job("acme", "", "later", `{}`, withRunAt(f.now().Add(time.Hour))))
		}
		results = append(results, f.enqueue(true, true, batch...)...)
		all = append(all, batch...)
		f.wall.Advance(10 * time.Millisecond)
	}
	entries := checkChains(t, f.db)
	if len(entries) != len(all) {
		t.Fatalf("%d log entries for %d jobs", len(entries), len(all))
	}
	for i, j := range all {
		r, e := results[i], entries[j.JobID]
		if r.JobID != j.JobID || r.Deduplicated || r.THLC != e.tHLC || r.Link != e.link {
			t.Fatalf("result %+v, entry %+v", r, e)
		}
		if e.node != "node-a" || e.createdAt != j.CreatedAt.UnixMilli() || e.idemKey.String != j.IdempotencyKey || e.idemKey.Valid != (j.IdempotencyKey != "") {
			t.Fatalf("entry %+v of %+v", e, j)
		}
		var project sql.NullString
		var digest, status, stateStatus, stateTHLC string
		var attempts, createdAt, runAt int64
		if !row(t, f.db, `SELECT project_id, payload_digest, status, attempts, created_at, run_at FROM jobs WHERE id = ?`, j.JobID,
			&project, &digest, &status, &attempts, &createdAt, &runAt) {
			t.Fatalf("no legacy row for %s", j.JobID)
		}
		if project.Valid != (j.PartitionKey != "") || project.String != j.PartitionKey || digest != j.PayloadHash.String() ||
			status != string(j.Status) || attempts != 0 || createdAt != j.CreatedAt.UnixMilli() || runAt != j.RunAt.UnixMilli() {
			t.Fatalf("legacy row (%v %s %s %d %d %d) of %+v", project, digest, status, attempts, createdAt, runAt, j)
		}
		if !row(t, f.db, `SELECT status, t_hlc FROM job_state WHERE job_id = ?`, j.JobID, &stateStatus, &stateTHLC) ||
			stateStatus != string(j.Status) || stateTHLC != e.tHLC {
			t.Fatalf("job_state (%s, %s) of %+v", stateStatus, stateTHLC, j)
		}
	}
}

func TestEnqueueDeduplicatesAcrossSides(t *testing.T) {
	f := newFixture(t)
	j1, j2, j3 := f.job("acme", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`), f.job("acme", "eu", "k", `{"n":3}`)

	if r := f.enqueue(true, false, j1); r[0].Deduplicated || r[0].THLC != "" {
		t.Fatalf("legacy-only enqueue: %+v", r[0])
	}
	r := f.enqueue(true, true, j1, j2, j2)
	if !r[0].Deduplicated || r[0].THLC != "" || r[0].Link != (chain.Hash{}) {
		t.Fatalf("legacy job enqueued again: %+v, want deduplicated without entry", r[0])
	}
	if r[1].Deduplicated || r[1].THLC == "" || !r[2].Deduplicated || r[2].THLC != r[1].THLC || r[2].Link != r[1].Link {
		t.Fatalf("repeat in one batch: %+v then %+v", r[1], r[2])
	}
	if r := f.enqueue(false, true, j3); r[0].Deduplicated || r[0].THLC == "" {
		t.Fatalf("HLC-only enqueue: %+v", r[0])
	}
	stored := checkChains(t, f.db)
	r = f.enqueue(true, false, j3, j2)
	for i, j := range []*driver.Prepared{j3, j2} {
		if !r[i].Deduplicated || r[i].THLC != stored[j.JobID].tHLC || r[i].Link != stored[j.JobID].link {
			t.Fatalf("enqueue %d again: %+v, want the stored entry %+v", i, r[i], stored[j.JobID])
		}
	}
	if n := count(t, f.db, `SELECT count(*) FROM jobs`); n != 2 {
		t.Fatalf("%d legacy rows, want 2 (j1, j2; j3 is HLC-only)", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM job_state`); n != 2 {
		t.Fatalf("%d HLC state rows, want 2 (j2, j3)", n)
	}
	if n := count(t, f.db, `SELECT count(*) FROM scheduler_log`); n != 2 {
		t.Fatalf("%d log entries, want 2", n)
	}
	checkChains(t, f.db)
}

func TestDequeueOrderAndLease(t *testing.T) {
	for _, hlcOrder := range []bool{false, true} {
		t.Run(fmt.Sprint("hlc=", hlcOrder), func(t *testing.T) {
			f := newFixture(t)
			a := f.job("acme", "", "report", `{"n":"a"}`)
			b := f.job("acme", "", "report", `{"n":"b"}`, withPriority(5))
			f.wall.Advance(time.Millisecond)
			c := f.job("acme", "", "report", `{"n":"c"}`, withPriority(1))
			later := f.job("acme", "", "report", `{"n":"later"}`, withRunAt(f.now().Add(time.Minute)), withPriority(9))
			other := f.job("acme", "", "mail", `{"n":"mail"}`, withPriority(9))
			foreign := f.job("zeta", "", "report", `{"n":"z"}`, withPriority(9))
			f.enqueue(true, true, a, b, c, later, other, foreign)
			entries := checkChains(t, f.db)

			leases := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, Kinds: []string{"report"}, TenantID: "acme"})
			want := jobIDs(b, c, a) // priority DESC, created_at, id
			if hlcOrder {
				want = jobIDs(a, b, c) // t_hlc
			}
			if !slices.Equal(ids(leases), want) {
				t.Fatalf("leased %v, want %v", ids(leases), want)
			}
			for _, l := range leases {
				j := map[uuid.UUID]*driver.Prepared{a.JobID: a, b.JobID: b, c.JobID: c}[l.JobID]
				if l.TenantID != "acme" || l.PartitionKey != "" || l.Kind != "report" || string(l.Payload) != string(j.Payload) ||
					l.Priority != j.Priority || l.THLC != entries[j.JobID].tHLC || l.Attempt != 1 || l.MaxAttempts != 25 ||
					!l.RunAt.Equal(j.RunAt) || !l.CreatedAt.Equal(j.CreatedAt) || l.Owner != "worker-1" || l.ExpiresAt.IsZero() || l.Chain != nil {
					t.Fatalf("lease %+v of %+v", l, j)
				}
				// Both sides hold the same lease.
				for _, q := range []string{`SELECT status, attempts, lease_token FROM jobs WHERE id = ?`, `SELECT status, attempts, lease_token FROM job_state WHERE job_id = ?`} {
					var status, token string
					var attempts int
					if !row(t, f.db, q, l.JobID, &status, &attempts, &token) || status != "running" || attempts != 1 || token != l.Token.String() {
						t.Fatalf("%s: (%s, %d, %s), want running, 1, %s", q, status, attempts, token, l.Token)
					}
				}
			}
			if got := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, TenantID: "acme"}); !slices.Equal(ids(got), jobIDs(other)) {
				t.Fatalf("second dequeue leased %v, want only the other kind", ids(got))
			}
			f.wall.Advance(time.Minute)
			if got := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, Limit: 1}); !slices.Equal(ids(got), jobIDs(later)) {
				t.Fatalf("after run_at: leased %v, want the scheduled job", ids(got))
			}
			if got := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder}); !slices.Equal(ids(got), jobIDs(foreign)) {
				t.Fatalf("leased %v, want the other tenant's job", ids(got))
			}
		})
	}
}

func TestStrictPartitions(t *testing.T) {
	for _, hlcOrder := range []bool{false, true} {
		t.Run(fmt.Sprint("hlc=", hlcOrder), func(t *testing.T) {
			f := newFixture(t)
			x1 := f.job("acme", "p1", "k", `{"x":1}`)
			y1 := f.job("acme", "p2", "k", `{"y":1}`)
			z1 := f.job("beta", "p1", "k", `{"z":1}`, withRunAt(f.now().Add(time.Hour)))
			d1 := f.job("beta", "", "k", `{"d":1}`)
			f.wall.Advance(time.Millisecond)
			x2 := f.job("acme", "p1", "k", `{"x":2}`, withPriority(9)) // later in the partition: priority does not jump the queue
			y2 := f.job("acme", "p2", "k", `{"y":2}`)
			z2 := f.job("beta", "p1", "k", `{"z":2}`)
			f.enqueue(true, true, x1, y1, z1, d1)
			f.wall.Advance(time.Millisecond)
			f.enqueue(true, true, x2, y2, z2)
			strict := driver.DequeueParams{HLCOrder: hlcOrder, StrictPartitions: true}

			got := f.dequeue(strict)
			heads := jobIDs(x1, y1, d1) // z1 waits for its run_at and blocks z2
			if !sameSet(ids(got), heads) {
				t.Fatalf("leased %v, want the due heads %v", ids(got), heads)
			}
			if again := f.dequeue(strict); len(again) != 0 {
				t.Fatalf("leased %v while every head runs or waits", ids(again))
			}
			byID := map[uuid.UUID]driver.Lease{}
			for _, l := range got {
				byID[l.JobID] = l
			}
			// x1 fails and retries in a minute: its partition waits for it.
			if err := f.db.TransitionJob(context.Background(), driver.Transition{JobID: x1.JobID, Token: byID[x1.JobID].Token,
				Status: driver.StatusScheduled, RunAt: f.now().Add(time.Minute), Error: "boom", Now: f.now()}); err != nil {
				t.Fatal(err)
			}
			f.complete(byID[y1.JobID])
			if got := f.dequeue(strict); !slices.Equal(ids(got), jobIDs(y2)) {
				t.Fatalf("leased %v, want y2 only (x1 waits for its retry, x2 behind it)", ids(got))
			}
			f.wall.Advance(time.Minute)
			got = f.dequeue(strict)
			if !slices.Equal(ids(got), jobIDs(x1)) || got[0].Attempt != 2 {
				t.Fatalf("after the retry delay: leased %v, want x1 (attempt 2)", ids(got))
			}
			f.complete(got[0])
			if got := f.dequeue(strict); !slices.Equal(ids(got), jobIDs(x2)) {
				t.Fatalf("after x1: leased %v, want x2", ids(got))
			}
			f.wall.Advance(time.Hour)
			// z1 is due now; z2 stays behind it.
			if got := f.dequeue(strict); !slices.Equal(ids(got), jobIDs(z1)) {
				t.Fatalf("leased %v, want z1", ids(got))
			}
			// Without strict partitions, z2 runs beside z1.
			if got := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder}); !slices.Equal(ids(got), jobIDs(z2)) {
				t.Fatalf("non-strict dequeue leased %v, want z2", ids(got))
			}
		})
	}
}

func sameSet(a, b []uuid.UUID) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y uuid.UUID) int { return strings.Compare(x.String(), y.String()) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

func TestFencingAfterRescue(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	j := f.job("acme", "", "k", `{}`)
	f.enqueue(true, true, j)
	first := f.dequeue(driver.DequeueParams{HLCOrder: true})
	if len(first) != 1 {
		t.Fatalf("leased %d", len(first))
	}
	l1 := first[0]
	f.wall.Advance(31 * time.Second)
	rr, err := f.db.RescueExpired(ctx, driver.RescueParams{Now: f.now(), Limit: 10})
	rescued, failed := rr.Rescued, rr.Failed
	if err != nil || rescued != 1 || failed != 0 {
		t.Fatalf("rescue: %d rescued, %d failed, %v", rescued, failed, err)
	}
	for _, q := range []string{`SELECT status, attempts, run_at, last_error, lease_token IS NULL FROM jobs WHERE id = ?`,
		`SELECT status, attempts, run_at, last_error, lease_token IS NULL FROM job_state WHERE job_id = ?`} {
		var status, lastErr string
		var attempts int
		var runAt int64
		var cleared bool
		row(t, f.db, q, j.JobID, &status, &attempts, &runAt, &lastErr, &cleared)
		if status != "pending" || attempts != 1 || runAt != f.now().UnixMilli() || lastErr != "lease expired (owner worker-1)" || !cleared {
			t.Fatalf("%s: %s %d %d %q %v", q, status, attempts, runAt, lastErr, cleared)
		}
	}
	second := f.dequeue(driver.DequeueParams{HLCOrder: false, Owner: "worker-2"})
	if len(second) != 1 || second[0].Attempt != 2 {
		t.Fatalf("second lease: %+v", second)
	}
	l2 := second[0]
	if err := f.db.TransitionJob(ctx, driver.Transition{JobID: j.JobID, Token: l1.Token, Status: driver.StatusSucceeded, Now: f.now()}); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("stale holder's transition: %v, want ErrLeaseLost", err)
	}
	if err := f.db.ExtendLease(ctx, driver.ExtendParams{JobID: j.JobID, Token: l1.Token, Until: f.now().Add(time.Hour), Now: f.now()}); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("stale holder's extension: %v, want ErrLeaseLost", err)
	}
	if err := f.db.MarkChainViolation(ctx, driver.ViolationParams{JobID: j.JobID, Token: l1.Token, Reason: "x", Now: f.now()}); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("stale holder's chain violation: %v, want ErrLeaseLost", err)
	}
	until := f.now().Add(time.Hour)
	if err := f.db.ExtendLease(ctx, driver.ExtendParams{JobID: j.JobID, Token: l2.Token, Until: until, Now: f.now()}); err != nil {
		t.Fatal(err)
	}
	if info := f.get(j.JobID); info.Status != driver.StatusRunning || info.LeaseToken != l2.Token || info.LeaseOwner != "worker-2" ||
		!info.LeaseExpiresAt.Equal(until) || info.Attempts != 2 {
		t.Fatalf("after extension: %+v", info)
	}
	f.complete(l2)
	if err := f.db.TransitionJob(ctx, driver.Transition{JobID: j.JobID, Token: l2.Token, Status: driver.StatusSucceeded, Now: f.now()}); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("second completion: %v, want ErrLeaseLost", err)
	}
	if info := f.get(j.JobID); info.Status != driver.StatusSucceeded || info.LeaseToken != (uuid.UUID{}) || !info.InLegacy || !info.InHLC {
		t.Fatalf("after completion: %+v", info)
	}
}

func TestRescueFailsAfterLastAttemptAndHonoursLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	last := f.job("acme", "", "k", `{"n":0}`, withMaxAttempts(1))
	others := []*driver.Prepared{f.job("acme", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`), f.job("acme", "", "k", `{"n":3}`)}
	f.enqueue(true, true, append([]*driver.Prepared{last}, others...)...)
	if n := len(f.dequeue(driver.DequeueParams{HLCOrder: true})); n != 4 {
		t.Fatalf("leased %d", n)
	}
	f.wall.Advance(time.Minute)
	rr, err := f.db.RescueExpired(ctx, driver.RescueParams{Now: f.now(), Limit: 3})
	r1, f1 := rr.Rescued, rr.Failed
	if err != nil || r1+f1 != 3 {
		t.Fatalf("first rescue: %d + %d, %v; want 3 jobs", r1, f1, err)
	}
	rr, err = f.db.RescueExpired(ctx, driver.RescueParams{Now: f.now(), Limit: 3})
	r2, f2 := rr.Rescued, rr.Failed
	if err != nil || r2+f2 != 1 || r1+r2 != 3 || f1+f2 != 1 {
		t.Fatalf("second rescue: %d + %d, %v; totals %d rescued %d failed, want 3 and 1", r2, f2, err, r1+r2, f1+f2)
	}
	for _, q := range []string{`SELECT status, last_error FROM jobs WHERE id = ?`, `SELECT status, last_error FROM job_state WHERE job_id = ?`} {
		var status, lastErr string
		row(t, f.db, q, last.JobID, &status, &lastErr)
		if status != "failed" || lastErr != "lease expired on the last attempt (owner worker-1)" {
			t.Fatalf("%s: %s %q", q, status, lastErr)
		}
	}
	if got := f.dequeue(driver.DequeueParams{HLCOrder: true}); !sameSet(ids(got), jobIDs(others...)) {
		t.Fatalf("leased %v after rescue, want the three with attempts left", ids(got))
	}
}

func TestTransitionRetrySnoozeAndCancel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b, c := f.job("acme", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`), f.job("acme", "", "k", `{"n":3}`)
	f.enqueue(true, true, a, b, c)
	leases := map[uuid.UUID]driver.Lease{}
	for _, l := range f.dequeue(driver.DequeueParams{HLCOrder: true}) {
		leases[l.JobID] = l
	}
	// Retry in a minute: scheduled. Snooze with run_at now: pending, attempt given back.
	if err := f.db.TransitionJob(ctx, driver.Transition{JobID: a.JobID, Token: leases[a.JobID].Token, Status: driver.StatusScheduled,
		RunAt: f.now().Add(time.Minute), Error: "boom", Now: f.now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.TransitionJob(ctx, driver.Transition{JobID: b.JobID, Token: leases[b.JobID].Token, Status: driver.StatusScheduled,
		RunAt: f.now(), UndoAttempt: true, Now: f.now()}); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{`SELECT status, attempts, run_at, COALESCE(last_error, '') FROM jobs WHERE id = ?`,
		`SELECT status, attempts, run_at, COALESCE(last_error, '') FROM job_state WHERE job_id = ?`} {
		var status, lastErr string
		var attempts int
		var runAt int64
		row(t, f.db, side, a.JobID, &status, &attempts, &runAt, &lastErr)
		if status != "scheduled" || attempts != 1 || runAt != f.now().Add(time.Minute).UnixMilli() || lastErr != "boom" {
			t.Fatalf("retry: %s %d %d %q", status, attempts, runAt, lastErr)
		}
		row(t, f.db, side, b.JobID, &status, &attempts, &runAt, &lastErr)
		if status != "pending" || attempts != 0 || lastErr != "" {
			t.Fatalf("snooze: %s %d %q", status, attempts, lastErr)
		}
	}

	if err := f.db.CancelJob(ctx, driver.CancelParams{JobID: uuid.New(), Reason: "", Now: f.now()}); !errors.Is(err, driver.ErrJobNotFound) {
		t.Fatalf("cancel of an unknown job: %v", err)
	}
	if err := f.db.CancelJob(ctx, driver.CancelParams{JobID: a.JobID, Reason: "not needed", Now: f.now()}); err != nil {
		t.Fatal(err)
	}
	if info := f.get(a.JobID); info.Status != driver.StatusCancelled || info.LastError != "not needed" {
		t.Fatalf("cancelled: %+v", info)
	}
	if err := f.db.CancelJob(ctx, driver.CancelParams{JobID: a.JobID, Reason: "", Now: f.now()}); !errors.Is(err, driver.ErrJobFinished) {
		t.Fatalf("second cancel: %v, want ErrJobFinished", err)
	}
	// Cancelling a running job takes it from its holder.
	if err := f.db.CancelJob(ctx, driver.CancelParams{JobID: c.JobID, Reason: "", Now: f.now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.TransitionJob(ctx, driver.Transition{JobID: c.JobID, Token: leases[c.JobID].Token, Status: driver.StatusSucceeded, Now: f.now()}); !errors.Is(err, driver.ErrLeaseLost) {
		t.Fatalf("holder of a cancelled job: %v, want ErrLeaseLost", err)
	}
	for _, side := range []string{`SELECT status, lease_token IS NULL FROM jobs WHERE id = ?`, `SELECT status, lease_token IS NULL FROM job_state WHERE job_id = ?`} {
		var status string
		var cleared bool
		if row(t, f.db, side, c.JobID, &status, &cleared); status != "cancelled" || !cleared {
			t.Fatalf("%s: %s, lease cleared %v", side, status, cleared)
		}
	}
}

func TestWithChainVerifiesAndMarksViolations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	jobs := []*driver.Prepared{f.job("acme", "", "k", `{"n":0}`), f.job("acme", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`)}
	f.enqueue(true, true, jobs...)
	entries := checkChains(t, f.db)
	if _, err := f.db.SQL.ExecContext(ctx, `UPDATE scheduler_log SET payload = '{"n":99}' WHERE job_id = ?`, jobs[2].JobID.String()); err != nil {
		t.Fatal(err)
	}
	for _, hlcOrder := range []bool{true, false} {
		leases := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, WithChain: true, Limit: 3})
		if len(leases) != 3 {
			t.Fatalf("hlc=%v: leased %d", hlcOrder, len(leases))
		}
		for _, l := range leases {
			e, stored := l.Chain, entries[l.JobID]
			if e == nil || e.Pos != stored.pos || e.THLC != stored.tHLC || e.Link != stored.link || e.PayloadHash != stored.hash || e.Seq == 0 {
				t.Fatalf("hlc=%v: chain entry %+v, stored %+v", hlcOrder, e, stored)
			}
			if e.Pos == 0 && (!e.PrevLinkNull || e.HasPredecessor) || e.Pos > 0 && (e.PrevLinkNull || !e.HasPredecessor || e.PredecessorLink != e.PrevLink) {
				t.Fatalf("hlc=%v: predecessor fields of %+v", hlcOrder, e)
			}
			reason := queue.VerifyEntry(l.JobID, e)
			if tampered := l.JobID == jobs[2].JobID; (reason != "") != tampered {
				t.Fatalf("hlc=%v: job %d: verify = %q", hlcOrder, e.Pos, reason)
			}
			if reason != "" {
				if err := f.db.MarkChainViolation(ctx, driver.ViolationParams{JobID: l.JobID, Token: l.Token, Reason: reason, Now: f.now()}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := f.db.TransitionJob(ctx, driver.Transition{JobID: l.JobID, Token: l.Token, Status: driver.StatusScheduled, RunAt: f.now(), Now: f.now()}); err != nil {
				t.Fatal(err)
			}
		}
		if hlcOrder {
			// Put the withheld job back for the legacy-read round.
			if _, err := f.db.SQL.ExecContext(ctx, `UPDATE job_state SET status = 'pending' WHERE job_id = ?1; UPDATE jobs SET status = 'pending' WHERE id = ?1`, jobs[2].JobID.String()); err != nil {
				t.Fatal(err)
			}
		}
	}
	info := f.get(jobs[2].JobID)
	if info.Status != driver.StatusChainViolation || !strings.HasPrefix(info.LastError, "chain violation: payload hash mismatch") ||
		!info.InHLC || !info.InLegacy || info.Chain == nil || string(info.Payload) != `{"n":99}` {
		t.Fatalf("violating job: %+v", info)
	}
	var legacyStatus string
	if row(t, f.db, `SELECT status FROM jobs WHERE id = ?`, jobs[2].JobID, &legacyStatus); legacyStatus != "failed" {
		t.Fatalf("legacy row of the violating job is %s, want failed", legacyStatus)
	}
}

// legacyJob turns a listed legacy job into a Prepared, as Queue.Backfill does.
func legacyJob(t *testing.T, li driver.JobInfo) *driver.Prepared {
	t.Helper()
	hash, err := chain.PayloadHash(li.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return &driver.Prepared{TenantID: li.TenantID, PartitionKey: li.PartitionKey, Kind: li.Kind, Payload: li.Payload, PayloadHash: hash,
		JobID: li.JobID, Priority: li.Priority, RunAt: li.RunAt, MaxAttempts: li.MaxAttempts, Status: li.Status, CreatedAt: li.CreatedAt,
		Attempts: li.Attempts, LeaseOwner: li.LeaseOwner, LeaseToken: li.LeaseToken, LeaseExpiresAt: li.LeaseExpiresAt, LastError: li.LastError}
}

func TestBackfillAndDrainAreIdempotent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	done := f.job("a", "", "k", `{"n":5}`, withPriority(100))
	f.enqueue(true, false, done)
	f.complete(f.dequeue(driver.DequeueParams{})[0])
	f.wall.Advance(time.Millisecond)
	a1 := f.job("a", "", "k", `{"n":1}`)
	f.wall.Advance(time.Millisecond)
	a2 := f.job("a", "eu", "k", `{"n":2}`)
	f.enqueue(true, false, a1, a2)
	f.wall.Advance(time.Millisecond)
	a3, b1 := f.job("a", "", "k", `{"n":3}`), f.job("b", "", "k", `{"n":4}`)
	f.enqueue(true, false, a3, b1)
	running := f.dequeue(driver.DequeueParams{Limit: 1, TenantID: "b"})[0]

	listed, err := f.db.LegacyOnly(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(listed); !slices.Equal(got[:2], jobIDs(a1, a2)) || !sameSet(got[2:], jobIDs(a3, b1)) {
		t.Fatalf("LegacyOnly listed %v, want a1, a2, then a3 and b1 (oldest first, finished job left out)", got)
	}
	for _, li := range listed {
		if li.JobID == b1.JobID && (li.Status != driver.StatusRunning || li.Attempts != 1 || li.LeaseToken != running.Token || li.LeaseOwner != "worker-1" || li.LeaseExpiresAt.IsZero()) {
			t.Fatalf("listed running job: %+v", li)
		}
	}
	if only, err := f.db.LegacyOnly(ctx, "b", 10); err != nil || !slices.Equal(idsOf(only), jobIDs(b1)) {
		t.Fatalf("LegacyOnly(b) = %v, %v", idsOf(only), err)
	}

	// a3 is leased after it was listed: the backfill must take its state as of now.
	var stale []*driver.Prepared
	for _, li := range listed {
		stale = append(stale, legacyJob(t, li))
	}
	leasedLate := f.dequeue(driver.DequeueParams{Limit: 1, Owner: "worker-9", TenantID: "a"})
	if len(leasedLate) != 1 || leasedLate[0].JobID != a1.JobID {
		t.Fatalf("leased %v", ids(leasedLate))
	}
	n, err := f.db.Backfill(ctx, driver.NewEnqueueBatch(stale, false, true, f.clock, f.now()))
	if err != nil || n != 4 {
		t.Fatalf("backfill: %d, %v; want 4", n, err)
	}
	if n, err := f.db.Backfill(ctx, driver.NewEnqueueBatch(stale, false, true, f.clock, f.now())); err != nil || n != 0 {
		t.Fatalf("second backfill: %d, %v; want 0", n, err)
	}
	if rest, err := f.db.LegacyOnly(ctx, "", 10); err != nil || len(rest) != 0 {
		t.Fatalf("LegacyOnly after backfill: %v, %v", idsOf(rest), err)
	}
	entries := checkChains(t, f.db)
	for _, c := range []struct {
		j     *driver.Prepared
		lease driver.Lease
	}{{b1, running}, {a1, leasedLate[0]}} {
		info := f.get(c.j.JobID)
		if !info.InHLC || info.Status != driver.StatusRunning || info.Attempts != 1 || info.LeaseToken != c.lease.Token ||
			info.LeaseOwner != c.lease.Owner || !info.LeaseExpiresAt.Equal(c.lease.ExpiresAt) || !info.CreatedAt.Equal(c.j.CreatedAt) {
			t.Fatalf("backfilled running job: %+v", info)
		}
		if entries[c.j.JobID].createdAt != c.j.CreatedAt.UnixMilli() {
			t.Fatalf("log created_at %d, want the original %d", entries[c.j.JobID].createdAt, c.j.CreatedAt.UnixMilli())
		}
		// The holder finishes on both sides.
		f.complete(c.lease)
		var status string
		if row(t, f.db, `SELECT status FROM job_state WHERE job_id = ?`, c.j.JobID, &status); status != "succeeded" {
			t.Fatalf("HLC state after completion: %s", status)
		}
	}
	if n := count(t, f.db, `SELECT count(*) FROM job_state WHERE job_id = ?`, done.JobID.String()); n != 0 {
		t.Fatal("a finished legacy job was backfilled")
	}

	// Drain: HLC-only jobs go to the legacy table, once.
	h1, h2 := f.job("h", "", "k", `{"n":6}`), f.job("h", "p", "k", `{"n":7}`)
	f.enqueue(false, true, h1, h2)
	hl := f.dequeue(driver.DequeueParams{HLCOrder: true, TenantID: "h", Limit: 1})[0]
	f.wall.Advance(time.Second)
	if n, err := f.db.DrainToLegacy(ctx, 10, f.now()); err != nil || n != 2 {
		t.Fatalf("drain: %d, %v; want 2", n, err)
	}
	if n, err := f.db.DrainToLegacy(ctx, 10, f.now()); err != nil || n != 0 {
		t.Fatalf("second drain: %d, %v; want 0", n, err)
	}
	var status, digest, token string
	var project sql.NullString
	var attempts int
	var createdAt, updatedAt int64
	row(t, f.db, `SELECT status, payload_digest, project_id, attempts, lease_token, created_at, updated_at FROM jobs WHERE id = ?`, h1.JobID,
		&status, &digest, &project, &attempts, &token, &createdAt, &updatedAt)
	if hl.JobID != h1.JobID || status != "running" || digest != h1.PayloadHash.String() || project.Valid || attempts != 1 || token != hl.Token.String() ||
		createdAt != h1.CreatedAt.UnixMilli() || updatedAt != f.now().UnixMilli() {
		t.Fatalf("drained running job: %s %s %v %d %s %d %d", status, digest, project, attempts, token, createdAt, updatedAt)
	}
	row(t, f.db, `SELECT project_id FROM jobs WHERE id = ?`, h2.JobID, &project)
	if project.String != "p" {
		t.Fatalf("drained project_id %v, want p", project)
	}
	f.complete(hl) // fenced on both sides
	if got := f.dequeue(driver.DequeueParams{TenantID: "h"}); !slices.Equal(ids(got), jobIDs(h2)) {
		t.Fatalf("legacy read after drain leased %v, want h2", ids(got))
	}
}

func idsOf(infos []driver.JobInfo) []uuid.UUID {
	out := make([]uuid.UUID, len(infos))
	for i, li := range infos {
		out[i] = li.JobID
	}
	return out
}

func TestDriftRefusalWritesNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// Another node, ten minutes ahead, writes the head of acme's chain.
	aheadWall := hlc.NewManualClock(t0 + 10*60*1000)
	ahead, err := hlc.New(ctx, hlc.Config{Node: "node-b", Wall: aheadWall, Store: f.db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Enqueue(ctx, driver.NewEnqueueBatch([]*driver.Prepared{f.job("acme", "", "k", `{"n":0}`)}, true, true, ahead, f.now())); err != nil {
		t.Fatal(err)
	}
	// This node's first timestamp (chain "aaa", locked first) moves its
	// persisted bound inside the transaction; the second chain then fails.
	first, second := f.job("aaa", "", "k", `{"n":1}`), f.job("acme", "", "k", `{"n":2}`)
	_, err = f.db.Enqueue(ctx, driver.NewEnqueueBatch([]*driver.Prepared{second, first}, true, true, f.clock, f.now()))
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

func TestEnqueueInCallersTransaction(t *testing.T) {
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
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)`); err != nil {
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
	if _, err := f.db.EnqueueTx(ctx, "not a tx", driver.NewEnqueueBatch(nil, true, true, f.clock, f.now())); err == nil {
		t.Fatal("EnqueueTx accepted a string")
	}
}

func TestFairTenants(t *testing.T) {
	for _, hlcOrder := range []bool{false, true} {
		t.Run(fmt.Sprint("hlc=", hlcOrder), func(t *testing.T) {
			f := newFixture(t)
			var big []*driver.Prepared
			for i := range 30 {
				big = append(big, f.job("big", "", "k", fmt.Sprintf(`{"i":%d}`, i), withPriority(5)))
			}
			f.enqueue(true, true, big...)
			f.wall.Advance(time.Millisecond)
			small := []*driver.Prepared{f.job("small", "", "k", `{"i":0}`), f.job("small", "", "k", `{"i":1}`)}
			f.enqueue(true, true, small...)
			got := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, Limit: 4, FairTenants: true})
			per := map[string]int{}
			for _, l := range got {
				per[l.TenantID]++
			}
			if len(got) != 4 || per["big"] != 2 || per["small"] != 2 {
				t.Fatalf("fair dequeue of 4 gave %v", per)
			}
			if unfair := f.dequeue(driver.DequeueParams{HLCOrder: hlcOrder, Limit: 3}); len(unfair) != 3 || unfair[0].TenantID != "big" {
				t.Fatalf("plain dequeue: %v", ids(unfair))
			}
		})
	}
}

func TestLeadership(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	now := f.now()
	try := func(holder string, at time.Time) bool {
		t.Helper()
		ok, err := f.db.TryLead(ctx, driver.LeadParams{Name: "rescuer", Holder: holder, Until: at.Add(10 * time.Second), Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !try("a", now) || try("b", now) || !try("a", now.Add(5*time.Second)) {
		t.Fatal("a should lead and renew while b is refused")
	}
	if !try("b", now.Add(16*time.Second)) || try("a", now.Add(16*time.Second)) {
		t.Fatal("b should take over an expired lease")
	}
	if err := f.db.Resign(ctx, "rescuer", "b"); err != nil {
		t.Fatal(err)
	}
	if !try("a", now.Add(17*time.Second)) {
		t.Fatal("a should lead after b resigned")
	}
}

func TestClosedDatabaseFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	j := f.job("acme", "", "k", `{}`)
	f.enqueue(true, true, j)
	tx, err := f.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	now := f.now()
	id, token := j.JobID, uuid.New()
	b := driver.NewEnqueueBatch([]*driver.Prepared{f.job("acme", "", "k", `{"n":1}`)}, true, true, f.clock, now)
	calls := map[string]func() error{
		"Enqueue":   func() error { _, err := f.db.Enqueue(ctx, b); return err },
		"EnqueueTx": func() error { _, err := f.db.EnqueueTx(ctx, tx, b); return err },
		"Dequeue":   func() error { _, err := f.db.Dequeue(ctx, driver.DequeueParams{Limit: 1, Now: now}); return err },
		"TransitionJob": func() error {
			return f.db.TransitionJob(ctx, driver.Transition{JobID: id, Token: token, Status: driver.StatusSucceeded, Now: now})
		},
		"ExtendLease": func() error {
			return f.db.ExtendLease(ctx, driver.ExtendParams{JobID: id, Token: token, Until: now, Now: now})
		},
		"CancelJob":     func() error { return f.db.CancelJob(ctx, driver.CancelParams{JobID: id, Reason: "", Now: now}) },
		"RescueExpired": func() error { _, err := f.db.RescueExpired(ctx, driver.RescueParams{Now: now, Limit: 10}); return err },
		"MarkChainViolation": func() error {
			return f.db.MarkChainViolation(ctx, driver.ViolationParams{JobID: id, Token: token, Reason: "x", Now: now})
		},
		"GetJob":        func() error { _, err := f.db.GetJob(ctx, driver.JobRef{JobID: id}); return err },
		"LegacyOnly":    func() error { _, err := f.db.LegacyOnly(ctx, "", 10); return err },
		"Backfill":      func() error { _, err := f.db.Backfill(ctx, b); return err },
		"DrainToLegacy": func() error { _, err := f.db.DrainToLegacy(ctx, 10, now); return err },
		"TryLead": func() error {
			_, err := f.db.TryLead(ctx, driver.LeadParams{Name: "x", Holder: "a", Until: now, Now: now})
			return err
		},
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, driver.ErrClosed) {
			t.Errorf("%s on a closed database: %v, want ErrClosed", name, err)
		}
	}
}

// TestConcurrentProducersAndWorkers runs producers (group commit) and
// workers at once on one database, with the wall clock moving so the HLC
// keeps persisting its bound from inside transactions: every job runs
// exactly once and every chain verifies.
func TestConcurrentProducersAndWorkers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	q, err := queue.New(ctx, queue.Config{Backend: f.db, Clock: f.clock, Now: f.now,
		Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true, VerifyOnDequeue: true}})
	if err != nil {
		t.Fatal(err)
	}
	const producers, perProducer, workers = 4, 60, 3
	errs := make(chan error, producers+workers)
	done := make(chan struct{})
	ran := make(chan uuid.UUID, producers*perProducer)
	for p := range producers {
		go func() {
			for i := range perProducer {
				f.wall.Advance(50 * time.Millisecond)
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: fmt.Sprint("t", p%2), PartitionKey: fmt.Sprint("p", i%3), Kind: "k",
					Payload: []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := range workers {
		go func() {
			for {
				leases, err := q.Dequeue(ctx, queue.DequeueOptions{Owner: fmt.Sprint("w", w), Limit: 5, StrictPartitions: w == 0})
				if err != nil {
					errs <- err
					return
				}
				for _, l := range leases {
					if err := q.Complete(ctx, l); err != nil {
						errs <- err
						return
					}
					ran <- l.JobID
				}
				if len(leases) == 0 {
					select {
					case <-done:
						errs <- nil
						return
					case <-time.After(time.Millisecond):
					}
				}
			}
		}()
	}
	for range producers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[uuid.UUID]bool{}
	for len(seen) < producers*perProducer {
		select {
		case id := <-ran:
			if seen[id] {
				t.Fatalf("job %s ran twice", id)
			}
			seen[id] = true
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d jobs ran", len(seen), producers*perProducer)
		}
	}
	close(done)
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkChains(t, f.db)
	bound, err := f.db.HLCState().Load(ctx, "node-a")
	if err != nil || bound <= f.clock.Current().Physical {
		t.Fatalf("persisted bound %d (%v), last timestamp %v", bound, err, f.clock.Current())
	}
}

// TestClockStoreOnAnotherHandle: a clock persisting through one handle
// while the enqueue runs on another handle to the same file (as `ordo
// demo` wires its nodes) writes through the enqueue's transaction instead
// of waiting for the file's write lock.
func TestClockStoreOnAnotherHandle(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ordo.db")
	open := func() *sqlite.DB {
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	stateDB, backend := open(), open()
	if _, err := stateDB.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	wall := hlc.NewManualClock(t0)
	clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: stateDB.HLCState(), StoreTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: backend, wall: wall, clock: clock}
	start := time.Now()
	for i := range 3 {
		f.enqueue(true, true, f.job("acme", "", "k", fmt.Sprintf(`{"n":%d}`, i)))
		wall.Advance(5 * time.Second) // past the clock's reserve: the next stamp persists again
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("three enqueues took %v: the clock waited for the write lock", d)
	}
	bound, err := stateDB.HLCState().Load(ctx, "node-a")
	if err != nil || bound <= clock.Current().Physical {
		t.Fatalf("bound %d (%v), last timestamp %v", bound, err, clock.Current())
	}
	checkChains(t, backend)
}
