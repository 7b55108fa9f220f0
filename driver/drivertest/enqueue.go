package drivertest

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// testEnqueueResults: ids are deterministic, t_hlc parses, links chain,
// and the whole log re-links from genesis after many enqueues.
func testEnqueueResults(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes[1:], func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		j := queue.Job{TenantID: "acme", PartitionKey: "eu", Kind: "invoice", Payload: []byte(`{"b":[1,2],"a":"x"}`)}
		r := n.enqueue(j)
		if want := jobID(t, j); r.JobID != want {
			t.Errorf("JobID = %s, want chain.JobID = %s", r.JobID, want)
		}
		ts, err := hlc.Parse(r.THLC)
		if err != nil {
			t.Fatalf("t_hlc %q does not parse: %v", r.THLC, err)
		}
		if ts.Node != "node-a" || ts.Physical != base {
			t.Errorf("t_hlc %s: want node node-a at the fake wall clock %d", r.THLC, base)
		}
		ph, _ := chain.PayloadHash(j.Payload)
		if want, _ := chain.Link(chain.Hash{}, r.JobID, r.THLC, ph); r.Link != want {
			t.Errorf("genesis link %v, want chain.Link(zero, id, t_hlc, payload hash) = %v", r.Link, want)
		}

		// The same payload, formatted differently, is the same job.
		again := j
		again.Payload = []byte(` { "a" : "x", "b" : [ 1, 2 ] } `)
		r2 := n.enqueue(again)
		if !r2.Deduplicated || r2.JobID != r.JobID || r2.THLC != r.THLC || r2.Link != r.Link {
			t.Errorf("same payload reformatted: %+v, want the first result %+v deduplicated", r2, r)
		}

		// Many more, some in the same millisecond, on three chains.
		results := []queue.EnqueueResult{r}
		for i := range 60 {
			r := n.enqueue(job("acme", []string{"eu", "us", ""}[i%3], i))
			results = append(results, r)
			if i%4 == 3 {
				n.advance(time.Millisecond)
			}
		}
		log := h.verifyChains()
		if len(log) != 3 {
			t.Errorf("%d chains, want 3", len(log))
		}
		idx := byJob(log)
		if len(idx) != len(results) {
			t.Errorf("%d log entries for %d jobs", len(idx), len(results))
		}
		for _, r := range results {
			e, ok := idx[r.JobID]
			h.checkResult(r, e, ok)
			// The link recomputed from the entry before it.
			if ok && e.Pos > 0 {
				prev := log[e.Key][e.Pos-1]
				var p, ph chain.Hash
				copy(p[:], prev.Link)
				copy(ph[:], e.PayloadHash)
				if want, _ := chain.Link(p, r.JobID, r.THLC, ph); want != r.Link {
					t.Errorf("job %s: link %v, want chain.Link(previous link, ...) = %v", r.JobID, r.Link, want)
				}
			}
		}
		info := n.get(r.JobID)
		if info.Chain == nil || info.Chain.THLC != r.THLC || info.Chain.Link != r.Link {
			t.Errorf("Get(%s).Chain = %+v, want the entry of %s", r.JobID, info.Chain, r.THLC)
		}
		if c, _ := chain.Canonicalize(info.Payload); string(c) != `{"a":"x","b":[1,2]}` {
			t.Errorf("Get payload %s, want the canonical first payload", info.Payload)
		}
	})
}

// testEnqueueManyThousand: one batch of 1,000 jobs over 3 tenants and 3
// partitions each is written in order, fully chained, and deduplicated as
// a whole when sent again.
func testEnqueueManyThousand(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[2]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		jobs := make([]queue.Job, 1000)
		for i := range jobs {
			jobs[i] = job(fmt.Sprint("tenant-", i%3), []string{"", "p-1", "p-2"}[(i/3)%3], i)
		}
		res := n.enqueueMany(jobs)
		thlcs := map[string]bool{}
		for i, r := range res {
			if r.Deduplicated {
				t.Fatalf("job %d: Deduplicated on first enqueue", i)
			}
			if r.JobID != jobID(t, jobs[i]) {
				t.Fatalf("job %d: id %s, want %s", i, r.JobID, jobID(t, jobs[i]))
			}
			if thlcs[r.THLC] {
				t.Errorf("job %d: t_hlc %s issued twice", i, r.THLC)
			}
			thlcs[r.THLC] = true
		}
		if got, want := h.rows(), (rows{Jobs: 1000, Log: 1000, State: 1000, Heads: 9}); got != want {
			t.Errorf("after EnqueueMany(1000): %v, want %v", got, want)
		}
		log := h.verifyChains()
		idx := byJob(log)
		for _, r := range res {
			e, ok := idx[r.JobID]
			h.checkResult(r, e, ok)
		}
		// Within a chain, batch order is chain order.
		for k, es := range log {
			last := -1
			for _, e := range es {
				var p struct{ N int }
				if _, err := fmt.Sscanf(strings.ReplaceAll(e.Payload, " ", ""), `{"n":%d}`, &p.N); err != nil {
					t.Fatalf("payload %q: %v", e.Payload, err)
				}
				if p.N <= last {
					t.Errorf("chain %v: job %d after job %d; batch order not kept", k, p.N, last)
				}
				last = p.N
			}
		}

		again := n.enqueueMany(jobs)
		for i, r := range again {
			if !r.Deduplicated || r.JobID != res[i].JobID || r.THLC != res[i].THLC || r.Link != res[i].Link {
				t.Errorf("job %d sent again: %+v, want %+v deduplicated", i, r, res[i])
				break
			}
		}
		if got, want := h.rows(), (rows{Jobs: 1000, Log: 1000, State: 1000, Heads: 9}); got != want {
			t.Errorf("after sending the batch again: %v, want %v", got, want)
		}
	})
}

// testDedup: the same job twice, in every combination, is one job.
func testDedup(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		m := o.Mode()
		n := h.newNode("node-a", base, o)
		same := func(what string, got, want queue.EnqueueResult) {
			t.Helper()
			if !got.Deduplicated || got.JobID != want.JobID || got.THLC != want.THLC || got.Link != want.Link {
				t.Errorf("%s: %+v, want %+v with Deduplicated", what, got, want)
			}
		}
		J, K, L := job("acme", "p", 1), job("acme", "p", 2), job("acme", "p", 3)
		rJ := n.enqueue(J)
		n.advance(time.Second)
		rs := n.enqueueMany([]queue.Job{K, J})
		if rs[0].Deduplicated {
			t.Errorf("K: deduplicated on first enqueue")
		}
		same("J in EnqueueMany after Enqueue", rs[1], rJ)
		var rs2 []queue.EnqueueResult
		err := noPanic(t, "EnqueueMany with the same job twice", func() (err error) {
			rs2, err = n.q.EnqueueMany(h.ctx, []queue.Job{L, L})
			return err
		})
		switch {
		case err != nil:
			t.Errorf("EnqueueMany with the same job twice: %v", err)
		case len(rs2) != 2:
			t.Errorf("EnqueueMany with the same job twice: %d results", len(rs2))
		default:
			if rs2[0].Deduplicated || rs2[0].JobID != jobID(t, L) {
				t.Errorf("L: first of two in one batch: %+v, want L written", rs2[0])
			}
			same("L twice in one EnqueueMany", rs2[1], rs2[0])
		}
		if _, err := n.q.Get(h.ctx, jobID(t, L)); err != nil {
			n.enqueue(L) // so that the counts below are about the rest
		}

		// An idempotency key replaces the payload in the id.
		M := queue.Job{TenantID: "acme", PartitionKey: "p", Kind: "charge", Payload: []byte(`{"amount":1}`), IdempotencyKey: "order-1"}
		rM := n.enqueue(M)
		same("same idempotency key and payload", n.enqueue(M), rM)
		M2 := M
		M2.Payload = []byte(`{"amount":2}`)
		// The key names one payload: another under it is refused
		// (testIdempotencyConflict), unless the key was derived.
		M2.KeyDerived = true
		same("same derived key, other payload", n.enqueue(M2), rM)
		if want, _ := chain.JobID("acme", "p", "charge", "order-1", chain.Hash{}); rM.JobID != want {
			t.Errorf("keyed job id %s, want %s (the key, not the payload)", rM.JobID, want)
		}
		if p := n.get(rM.JobID).Payload; !strings.Contains(string(p), "1") || strings.Contains(string(p), "2") {
			t.Errorf("stored payload %s, want the first one", p)
		}

		want := rows{}
		if m.WritesLegacy() {
			want.Jobs = 4
		}
		if m.WritesHlc() {
			want.Log, want.State, want.Heads = 4, 4, 1
			h.verifyChains()
		}
		if got := h.rows(); got != want {
			t.Errorf("after 4 jobs and 4 duplicates: %v, want %v", got, want)
		}
		hlcDup, legacyDup := counter(t, n.q.Metrics().HlcDeduplicated), counter(t, n.q.Metrics().LegacyDeduplicated)
		if m.WritesHlc() && (hlcDup != 4 || legacyDup != 0) {
			t.Errorf("scheduler_hlc_enqueue_deduplicated_total = %v (legacy %v), want 4", hlcDup, legacyDup)
		}
		if !m.WritesHlc() && (hlcDup != 0 || legacyDup != 4) {
			t.Errorf("legacy dedup counter = %v (hlc %v), want 4", legacyDup, hlcDup)
		}

		// A job written in one mode is a duplicate in every other: the
		// backend looks on both sides.
		for _, other := range modes {
			if err := n.q.SetOptions(h.ctx, other); err != nil {
				t.Fatal(err)
			}
			r := n.enqueue(J)
			if !r.Deduplicated || r.JobID != rJ.JobID {
				t.Errorf("J enqueued again in mode %v after mode %v: %+v, want deduplicated", other.Mode(), m, r)
			}
		}
		got := h.rows()
		if got.Log > 4 || got.Jobs > 4 {
			t.Errorf("after enqueuing J again in every mode: %v; J was written twice", got)
		}
	})
}

// testGroupCommit: concurrent Enqueue calls on one chain all succeed, with
// distinct timestamps, on a chain that verifies.
func testGroupCommit(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		const N = 200
		res := make([]queue.EnqueueResult, N)
		errs := make([]error, N)
		var wg sync.WaitGroup
		for i := range N {
			wg.Go(func() { res[i], errs[i] = n.q.Enqueue(h.ctx, job("acme", "hot", i)) })
		}
		wg.Wait()
		seen := map[string]int{}
		for i := range N {
			if errs[i] != nil {
				t.Fatalf("Enqueue %d: %v", i, errs[i])
			}
			if res[i].Deduplicated {
				t.Errorf("Enqueue %d: deduplicated", i)
			}
			if j, dup := seen[res[i].THLC]; dup {
				t.Errorf("Enqueue %d and %d got the same t_hlc %s", j, i, res[i].THLC)
			}
			seen[res[i].THLC] = i
		}
		log := h.verifyChains()
		es := log[chain.Key{TenantID: "acme", PartitionKey: "hot"}]
		if len(es) != N {
			t.Fatalf("chain has %d entries, want %d", len(es), N)
		}
		idx := byJob(log)
		for _, r := range res {
			e, ok := idx[r.JobID]
			h.checkResult(r, e, ok)
		}
	})
}

// testBadInput: invalid jobs are refused with ErrInvalidJob naming the
// field, and nothing is written, alone or in a batch.
func testBadInput(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[2]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		n.enqueue(job("acme", "p", 0))
		before := h.rows()
		good := job("acme", "p", 1)
		with := func(f func(*queue.Job)) queue.Job { j := good; f(&j); return j }
		for _, c := range []struct {
			name, field string
			job         queue.Job
		}{
			{"invalid JSON", "payload", with(func(j *queue.Job) { j.Payload = []byte(`{"a":`) })},
			{"empty payload", "payload", with(func(j *queue.Job) { j.Payload = nil })},
			{"trailing data", "payload", with(func(j *queue.Job) { j.Payload = []byte(`{} {}`) })},
			{"empty tenant", "tenant_id", with(func(j *queue.Job) { j.TenantID = "" })},
			{"tenant with a space", "tenant_id", with(func(j *queue.Job) { j.TenantID = "ac me" })},
			{"partition with a control character", "partition_key", with(func(j *queue.Job) { j.PartitionKey = "p\x01" })},
			{"partition with NUL", "partition_key", with(func(j *queue.Job) { j.PartitionKey = "p\x00" })},
			{"kind starting with a digit", "kind", with(func(j *queue.Job) { j.Kind = "9report" })},
			{"empty kind", "kind", with(func(j *queue.Job) { j.Kind = "" })},
			{"idempotency key with NUL", "idempotency_key", with(func(j *queue.Job) { j.IdempotencyKey = "k\x00" })},
			{"idempotency key not UTF-8", "idempotency_key", with(func(j *queue.Job) { j.IdempotencyKey = "k\xff" })},
			{"payload with \\u0000", "U+0000", with(func(j *queue.Job) { j.Payload = []byte(`{"a":"x\u0000y"}`) })},
			{"negative max attempts", "max_attempts", with(func(j *queue.Job) { j.MaxAttempts = -1 })},
			{"priority out of range", "priority", with(func(j *queue.Job) { j.Priority = 40000 })},
			// Issue 14: a limit of one backend (SQLite's JSON functions
			// nest 1,000 deep) is the limit of both.
			{"payload nested past the limit", "payload", with(func(j *queue.Job) { j.Payload = nested(chain.MaxPayloadDepth + 1) })},
			{"run_at after year 9999", "run_at", with(func(j *queue.Job) { j.RunAt = queue.MaxRunAt.Add(time.Millisecond) })},
		} {
			_, err := n.q.Enqueue(h.ctx, c.job)
			if err == nil || !errors.Is(err, queue.ErrInvalidJob) || !strings.Contains(err.Error(), c.field) {
				t.Errorf("%s: Enqueue error %v; want one wrapping queue.ErrInvalidJob and naming %s", c.name, err, c.field)
			}
			_, err = n.q.EnqueueMany(h.ctx, []queue.Job{good, c.job, job("acme", "q", 2)})
			if err == nil || !errors.Is(err, queue.ErrInvalidJob) || !strings.Contains(err.Error(), c.field) || !strings.Contains(err.Error(), "job 1") {
				t.Errorf("%s: EnqueueMany error %v; want one wrapping queue.ErrInvalidJob naming job 1 and %s", c.name, err, c.field)
			}
			if got := h.rows(); got != before {
				t.Fatalf("%s: rows changed from %v to %v", c.name, before, got)
			}
		}
		// At the limit, both backends store the payload and read it back.
		deep := n.enqueue(with(func(j *queue.Job) { j.Payload = nested(chain.MaxPayloadDepth) }))
		if got := n.get(deep.JobID).Payload; string(got) != string(nested(chain.MaxPayloadDepth)) {
			t.Errorf("payload nested %d deep read back as %.40s...", chain.MaxPayloadDepth, got)
		}
		// A handler's error or a cancel reason may hold anything: both
		// backends store it with U+0000 and invalid UTF-8 replaced.
		leases, err := n.q.Dequeue(h.ctx, queue.DequeueOptions{Limit: 10})
		if err != nil || len(leases) == 0 {
			t.Fatalf("dequeue: %d leases, %v", len(leases), err)
		}
		if _, err := n.q.Fail(h.ctx, leases[0], errors.New("bad\x00 \xff"), queue.FailOptions{NoRetry: true}); err != nil {
			t.Fatalf("Fail with U+0000 in the error: %v", err)
		}
		if got := n.get(leases[0].JobID).LastError; got != "bad\uFFFD \uFFFD" {
			t.Errorf("last error stored as %q; want %q", got, "bad\uFFFD \uFFFD")
		}
		if _, err := n.q.Dequeue(h.ctx, queue.DequeueOptions{Limit: 1, Owner: "w\x00"}); !errors.Is(err, queue.ErrInvalidJob) || !strings.Contains(err.Error(), "owner") {
			t.Errorf("dequeue with U+0000 in the owner: %v; want queue.ErrInvalidJob naming the owner", err)
		}
		// A backslash followed by u0000 is an ordinary string, not NUL.
		r := n.enqueue(with(func(j *queue.Job) { j.Payload = []byte(`{"a":"\\u0000"}`) }))
		if c, _ := chain.Canonicalize(n.get(r.JobID).Payload); string(c) != `{"a":"\\u0000"}` {
			t.Errorf("payload with an escaped backslash stored as %s", c)
		}
		h.verifyChains()
	})
}

// testEnqueueTx: a job enqueued in a caller's transaction exists if and
// only if the caller commits, together with the caller's own writes.
func testEnqueueTx(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[2], modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		if h.tg.Begin == nil {
			t.Skipf("%s: Target.Begin is nil; the backend cannot enqueue in a caller's transaction", h.tg.Name)
		}
		n := h.newNode("node-a", base, o)
		h.exec("CREATE TABLE app_orders (id TEXT PRIMARY KEY)")
		insert := h.sql("INSERT INTO app_orders (id) VALUES (?)")
		J, K := job("acme", "p", 1), job("acme", "p", 2)

		tx := h.tg.Begin(t, n.b)
		if err := tx.Exec(h.ctx, insert, "order-1"); err != nil {
			t.Fatal(err)
		}
		rs, err := n.q.EnqueueTx(h.ctx, tx.Tx, J)
		if err != nil || len(rs) != 1 || rs[0].Deduplicated {
			t.Fatalf("EnqueueTx: %+v, %v", rs, err)
		}
		if err := tx.Rollback(h.ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.q.Get(h.ctx, rs[0].JobID); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("job enqueued in a rolled-back transaction: Get error %v, want ErrJobNotFound", err)
		}
		if got := h.rows(); got != (rows{}) || h.count("SELECT count(*) FROM app_orders") != 0 {
			t.Errorf("after rollback: %v, %d orders", got, h.count("SELECT count(*) FROM app_orders"))
		}

		tx = h.tg.Begin(t, n.b)
		if err := tx.Exec(h.ctx, insert, "order-2"); err != nil {
			t.Fatal(err)
		}
		rs, err = n.q.EnqueueTx(h.ctx, tx.Tx, J, K)
		if err != nil || len(rs) != 2 || rs[0].Deduplicated || rs[1].Deduplicated {
			t.Fatalf("EnqueueTx: %+v, %v", rs, err)
		}
		if err := tx.Commit(h.ctx); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			n.expectStatus(r.JobID, queue.StatusPending)
		}
		if h.count("SELECT count(*) FROM app_orders") != 1 {
			t.Errorf("the caller's own write was not committed")
		}
		if o.Mode().WritesHlc() {
			log := h.verifyChains()
			idx := byJob(log)
			for _, r := range rs {
				e, ok := idx[r.JobID]
				h.checkResult(r, e, ok)
			}
			if e := idx[rs[0].JobID]; e.Pos != 0 {
				t.Errorf("first committed job at chain_pos %d: the rolled-back enqueue left a trace", e.Pos)
			}
		}

		tx = h.tg.Begin(t, n.b)
		again, err := n.q.EnqueueTx(h.ctx, tx.Tx, J)
		if err != nil || len(again) != 1 || !again[0].Deduplicated || again[0].JobID != rs[0].JobID || again[0].THLC != rs[0].THLC {
			t.Errorf("EnqueueTx of an existing job: %+v, %v; want it deduplicated", again, err)
		}
		if err := tx.Commit(h.ctx); err != nil {
			t.Fatal(err)
		}
		n.advance(time.Second)
		got := n.dequeue(queue.DequeueOptions{Limit: 10})
		if !sameSet(ids(got), []uuid.UUID{rs[0].JobID, rs[1].JobID}) {
			t.Errorf("dequeued %v, want the two committed jobs", ids(got))
		}
		for _, l := range got {
			n.complete(l)
		}
	})
}

// testGroupCommitDuplicates: producers that send the same jobs at the same
// time (a retrying client, two replicas of one service) get one job each,
// reported once as written and otherwise as deduplicated.
func testGroupCommitDuplicates(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		const N, distinct = 120, 10
		res := make([]queue.EnqueueResult, N)
		errs := make([]error, N)
		var wg sync.WaitGroup
		for i := range N {
			wg.Go(func() {
				errs[i] = noPanic(t, "concurrent Enqueue of a duplicate", func() (err error) {
					res[i], err = n.q.Enqueue(h.ctx, job("acme", "hot", i%distinct))
					return err
				})
			})
		}
		wg.Wait()
		written := map[uuid.UUID]int{}
		firstOf := map[uuid.UUID]queue.EnqueueResult{}
		for i := range N {
			if errs[i] != nil {
				t.Fatalf("Enqueue %d: %v", i, errs[i])
			}
			r := res[i]
			if r.JobID != jobID(t, job("acme", "hot", i%distinct)) {
				t.Fatalf("Enqueue %d: id %s", i, r.JobID)
			}
			if !r.Deduplicated {
				written[r.JobID]++
			}
			if f, ok := firstOf[r.JobID]; ok && (f.THLC != r.THLC || f.Link != r.Link) {
				t.Errorf("job %s reported as (%s, %v) and as (%s, %v)", r.JobID, f.THLC, f.Link, r.THLC, r.Link)
			}
			firstOf[r.JobID] = r
		}
		if len(firstOf) != distinct {
			t.Errorf("%d distinct jobs, want %d", len(firstOf), distinct)
		}
		for id, c := range written {
			if c != 1 {
				t.Errorf("job %s reported written %d times", id, c)
			}
		}
		want := rows{Jobs: distinct}
		if o.Mode().WritesHlc() {
			want = rows{Log: distinct, State: distinct, Heads: 1}
			h.verifyChains()
		}
		if got := h.rows(); got != want {
			t.Errorf("after %d concurrent enqueues of %d jobs: %v, want %v", N, distinct, got, want)
		}
	})
}

// testStoredRows: in dual-write, an enqueue stores on each side what the
// job is: the log entry keeps the enqueue time and the idempotency key
// (NULL without one); the legacy row keeps the partition as project_id
// (NULL for the default partition), the payload hash as payload_digest,
// the status, no attempts, created_at and run_at; job_state keeps the
// status and the entry's t_hlc.
func testStoredRows(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes[1:3], func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		type stored struct {
			j       queue.Job
			r       queue.EnqueueResult
			created int64
			status  queue.Status
		}
		var all []stored
		for round := range 3 {
			var batch []queue.Job
			for i := range 9 {
				batch = append(batch, queue.Job{TenantID: []string{"acme", "beta"}[i%2], PartitionKey: []string{"", "eu", "us"}[i%3],
					Kind: "report", Payload: fmt.Appendf(nil, `{"round":%d,"i":%d}`, round, i)})
			}
			if round == 1 {
				batch = append(batch,
					queue.Job{TenantID: "acme", PartitionKey: "eu", Kind: "mail", Payload: []byte(`{"to":"x"}`), IdempotencyKey: "welcome-1"},
					queue.Job{TenantID: "acme", Kind: "later", Payload: []byte(`{}`), RunAt: n.now().Add(time.Hour)})
			}
			for i, r := range n.enqueueMany(batch) {
				s := stored{j: batch[i], r: r, created: n.wall.UnixMilli(), status: queue.StatusPending}
				if !batch[i].RunAt.IsZero() {
					s.status = queue.StatusScheduled
				}
				all = append(all, s)
			}
			n.advance(10 * time.Millisecond)
		}
		idx := byJob(h.verifyChains())
		if len(idx) != len(all) {
			t.Fatalf("%d log entries for %d jobs", len(idx), len(all))
		}
		for _, s := range all {
			id := s.r.JobID
			e, ok := idx[id]
			h.checkResult(s.r, e, ok)
			if s.r.Deduplicated || e.Node != "node-a" || e.CreatedAt != s.created {
				t.Errorf("job %s: result %+v, entry node %q created_at %d; want written by node-a at %d", id, s.r, e.Node, e.CreatedAt, s.created)
			}
			var key sql.NullString
			if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT idempotency_key FROM {scheduler_log} WHERE job_id = ?"), id.String()).Scan(&key); err != nil {
				t.Fatal(err)
			}
			if key.Valid != (s.j.IdempotencyKey != "") || key.String != s.j.IdempotencyKey {
				t.Errorf("job %s: scheduler_log.idempotency_key %v, want %q (NULL when empty)", id, key, s.j.IdempotencyKey)
			}
			var project sql.NullString
			var digest, status string
			var attempts int64
			var created, runAt any
			if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT project_id, payload_digest, status, attempts, created_at, run_at FROM {jobs} WHERE id = ?"),
				id.String()).Scan(&project, &digest, &status, &attempts, &created, &runAt); err != nil {
				t.Fatalf("legacy row of %s: %v", id, err)
			}
			ph, _ := chain.PayloadHash(s.j.Payload)
			wantRunAt := s.created
			if !s.j.RunAt.IsZero() {
				wantRunAt = s.j.RunAt.UnixMilli()
			}
			if project.Valid != (s.j.PartitionKey != "") || project.String != s.j.PartitionKey || digest != ph.String() || status != string(s.status) ||
				attempts != 0 || millis(t, created) != s.created || millis(t, runAt) != wantRunAt {
				t.Errorf("job %s: legacy row (project_id %v, digest %s, %s, attempts %d, created_at %d, run_at %d), want (%q, %s, %s, 0, %d, %d)",
					id, project, digest, status, attempts, millis(t, created), millis(t, runAt), s.j.PartitionKey, ph, s.status, s.created, wantRunAt)
			}
			var stateStatus, stateTHLC string
			if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT status, t_hlc FROM {job_state} WHERE job_id = ?"), id.String()).Scan(&stateStatus, &stateTHLC); err != nil {
				t.Fatalf("job_state of %s: %v", id, err)
			}
			if stateStatus != string(s.status) || stateTHLC != e.THLC {
				t.Errorf("job %s: job_state (%s, %s), want (%s, the entry's %s)", id, stateStatus, stateTHLC, s.status, e.THLC)
			}
		}
	})
}

// testDedupAcrossSides: a job already on one side is a duplicate when the
// backend is asked to write it to the other, and its result is what is
// stored: no t_hlc and no link for a legacy-only job (and no entry is made
// for it), the stored t_hlc and link for a job with an entry, whichever
// sides the batch writes. (Driver level: Queue.SetOptions reconciles the
// sides when the mode changes, which would hide the case.)
func testDedupAcrossSides(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[1])
		j1, j2, j3 := n.prepared(job("acme", "", 1)), n.prepared(job("acme", "", 2)), n.prepared(job("acme", "eu", 3))
		enqueue := func(legacy, hlcSide bool, jobs ...*driver.Prepared) []driver.EnqueueResult {
			t.Helper()
			res, err := n.b.Enqueue(h.ctx, driver.NewEnqueueBatch(jobs, legacy, hlcSide, n.clock, n.now()))
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(jobs) {
				t.Fatalf("%d results for %d jobs", len(res), len(jobs))
			}
			return res
		}
		if r := enqueue(true, false, j1); r[0].Deduplicated || r[0].THLC != "" {
			t.Fatalf("legacy-only enqueue: %+v", r[0])
		}
		// (The same job twice in one backend batch is checked on SQLite
		// only: the PostgreSQL backend fails such a batch with a unique
		// violation on job_state; see store/sqlite/sqlite_only_test.go.)
		r := enqueue(true, true, j1, j2)
		if !r[0].Deduplicated || r[0].THLC != "" || r[0].Link != (chain.Hash{}) {
			t.Errorf("legacy-only job enqueued again to both sides: %+v, want deduplicated without t_hlc or link", r[0])
		}
		if r2 := enqueue(true, true, j2); r[1].Deduplicated || r[1].THLC == "" || !r2[0].Deduplicated || r2[0].THLC != r[1].THLC || r2[0].Link != r[1].Link {
			t.Errorf("enqueued, then again: %+v then %+v", r[1], r2[0])
		}
		if r := enqueue(false, true, j3); r[0].Deduplicated || r[0].THLC == "" {
			t.Errorf("HLC-only enqueue: %+v", r[0])
		}
		stored := byJob(h.verifyChains())
		r = enqueue(true, false, j3, j2)
		for i, j := range []*driver.Prepared{j3, j2} {
			e := stored[j.JobID]
			if !r[i].Deduplicated || r[i].JobID != j.JobID || r[i].THLC != e.THLC || string(r[i].Link[:]) != string(e.Link) {
				t.Errorf("legacy-only enqueue of job %d with an entry: %+v, want the stored entry (t_hlc %s, link %x) deduplicated", i, r[i], e.THLC, e.Link)
			}
		}
		if got, want := h.rows(), (rows{Jobs: 2, Log: 2, State: 2, Heads: 2}); got != want {
			t.Errorf("rows %v, want %v (j1 and j2 legacy; j2 and j3 on the HLC side)", got, want)
		}
		h.verifyChains()
	})
}

// testEnqueueTxWrongType: EnqueueTx with something that is not the
// backend's transaction type is an error.
func testEnqueueTxWrongType(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[1])
		b := driver.NewEnqueueBatch(nil, true, true, n.clock, n.now())
		if _, err := n.b.EnqueueTx(h.ctx, "not a tx", b); err == nil {
			t.Error("backend EnqueueTx accepted a string as its transaction")
		}
		if _, err := n.q.EnqueueTx(h.ctx, "not a tx", job("acme", "", 1)); err == nil {
			t.Error("Queue.EnqueueTx accepted a string as its transaction")
		}
		if got := h.rows(); got != (rows{}) {
			t.Errorf("rows %v after refused EnqueueTx calls", got)
		}
	})
}

// nested is a JSON payload of arrays nested depth deep.
func nested(depth int) []byte {
	return []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
}

// testIdempotencyConflict: an idempotency key names one payload. The same
// key with the same payload is the same job (Deduplicated); with another
// payload it is refused with ErrIdempotencyConflict and nothing is
// written, whether the first job is stored (on either side, in any mode),
// earlier in the same batch, or met inside a caller's transaction (whose
// rollback then takes the batch back). A key derived from part of the
// payload (KeyDerived) deduplicates instead.
func testIdempotencyConflict(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[2], modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		keyed := func(key string, n int) queue.Job {
			j := job("acme", "p", n)
			j.IdempotencyKey = key
			return j
		}
		first, err := n.q.Enqueue(h.ctx, keyed("order-7", 1))
		if err != nil || first.Deduplicated {
			t.Fatalf("first enqueue: %+v, %v", first, err)
		}
		if again, err := n.q.Enqueue(h.ctx, keyed("order-7", 1)); err != nil || !again.Deduplicated || again.JobID != first.JobID {
			t.Fatalf("the same key and payload again: %+v, %v; want it deduplicated", again, err)
		}
		before := h.rows()
		if _, err := n.q.Enqueue(h.ctx, keyed("order-7", 2)); !errors.Is(err, queue.ErrIdempotencyConflict) || !strings.Contains(err.Error(), "order-7") {
			t.Fatalf("the same key, another payload: %v; want ErrIdempotencyConflict naming the key", err)
		}
		if _, err := n.q.EnqueueMany(h.ctx, []queue.Job{job("acme", "p", 3), keyed("order-7", 2)}); !errors.Is(err, queue.ErrIdempotencyConflict) {
			t.Fatalf("a batch with a conflict: %v; want ErrIdempotencyConflict", err)
		}
		if _, err := n.q.EnqueueMany(h.ctx, []queue.Job{keyed("order-8", 1), keyed("order-8", 2)}); !errors.Is(err, queue.ErrIdempotencyConflict) {
			t.Fatalf("one key, two payloads in one batch: %v; want ErrIdempotencyConflict", err)
		}
		if after := h.rows(); after != before {
			t.Fatalf("refused enqueues wrote rows: %v -> %v", before, after)
		}
		derived := keyed("order-7", 2)
		derived.KeyDerived = true
		if r, err := n.q.Enqueue(h.ctx, derived); err != nil || !r.Deduplicated || r.JobID != first.JobID {
			t.Fatalf("a derived key, another payload: %+v, %v; want it deduplicated", r, err)
		}
		if h.tg.Begin != nil {
			tx := h.tg.Begin(t, n.b)
			_, err := n.q.EnqueueTx(h.ctx, tx.Tx, job("acme", "p", 4), keyed("order-7", 2))
			_ = tx.Rollback(h.ctx)
			// The legacy-only first job is only known outside the
			// caller's transaction, which EnqueueTx does not leave.
			if o.Mode().WritesHlc() && !errors.Is(err, queue.ErrIdempotencyConflict) {
				t.Fatalf("EnqueueTx with a conflict: %v; want ErrIdempotencyConflict", err)
			}
			if after := h.rows(); after != before {
				t.Fatalf("a rolled-back EnqueueTx wrote rows: %v -> %v", before, after)
			}
		}
	})
}
