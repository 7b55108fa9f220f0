package drivertest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// one dequeues exactly one job of tenant, or fails the test.
func (n *node) one(tenant string, o queue.DequeueOptions) queue.Lease {
	n.h.t.Helper()
	o.TenantID, o.Limit = tenant, 1
	ls := n.dequeue(o)
	if len(ls) != 1 {
		n.h.t.Fatalf("Dequeue(tenant %s) at %v: %d leases, want 1", tenant, n.now().UTC(), len(ls))
	}
	return ls[0]
}

// none checks that tenant has nothing to hand out now.
func (n *node) none(tenant, why string) {
	n.h.t.Helper()
	if ls := n.dequeue(queue.DequeueOptions{TenantID: tenant, Limit: 10}); len(ls) != 0 {
		n.h.t.Errorf("%s: dequeued %v, want nothing", why, ids(ls))
	}
}

// testLeases: a lease has an owner, a token and an expiry; an expired
// lease is rescued and the job handed out again under a new token; the old
// holder is fenced out; Extend keeps a lease alive; the last attempt
// expiring fails the job.
func testLeases(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		j := job("acme", "p", 1)
		j.MaxAttempts = 3
		r := n.enqueue(j)

		l1 := n.one("acme", queue.DequeueOptions{Owner: "worker-1", LeaseFor: 10 * time.Second})
		start := n.now()
		if l1.JobID != r.JobID || l1.Owner != "worker-1" || l1.Token == (uuid.UUID{}) || l1.Attempt != 1 || l1.MaxAttempts != 3 ||
			!l1.ExpiresAt.Equal(start.Add(10*time.Second)) || l1.TenantID != "acme" || l1.PartitionKey != "p" || l1.Kind != "report" {
			t.Errorf("lease %+v: want job %s, owner worker-1, a token, attempt 1 of 3, expiry %v", l1, r.JobID, start.Add(10*time.Second))
		}
		if c, _ := chain.Canonicalize(l1.Payload); string(c) != `{"n":1}` {
			t.Errorf("lease payload %s, want {\"n\":1}", l1.Payload)
		}
		info := n.expectStatus(r.JobID, queue.StatusRunning)
		if info.LeaseOwner != "worker-1" || info.LeaseToken != l1.Token || info.LeaseExpiresAt.UnixMilli() != l1.ExpiresAt.UnixMilli() || info.Attempts != 1 {
			t.Errorf("stored lease (%q, %s, %v, attempts %d), want (worker-1, %s, %v, 1)",
				info.LeaseOwner, info.LeaseToken, info.LeaseExpiresAt, info.Attempts, l1.Token, l1.ExpiresAt)
		}
		for _, tbl := range []struct{ table, col string }{{"jobs", "id"}, {"job_state", "job_id"}} {
			if tok := h.leaseToken(tbl.table, tbl.col, r.JobID); tok != "" && tok != l1.Token.String() {
				t.Errorf("%s.lease_token = %s, want %s", tbl.table, tok, l1.Token)
			}
		}
		n.none("acme", "while the only job is leased")

		n.advance(10 * time.Second) // exactly at the expiry: still held
		if res, fail, err := n.q.RescueExpired(h.ctx); err != nil || res != 0 || fail != 0 {
			t.Errorf("RescueExpired at the expiry: %d, %d, %v; want nothing", res, fail, err)
		}
		n.advance(time.Second)
		if res, fail, err := n.q.RescueExpired(h.ctx); err != nil || res != 1 || fail != 0 {
			t.Fatalf("RescueExpired after the expiry: rescued %d, failed %d, %v; want 1, 0", res, fail, err)
		}
		n.expectStatus(r.JobID, queue.StatusPending)

		l2 := n.one("acme", queue.DequeueOptions{Owner: "worker-2", LeaseFor: 10 * time.Second})
		if l2.JobID != r.JobID || l2.Token == l1.Token || l2.Attempt != 2 {
			t.Errorf("second lease %+v: want the same job, a new token, attempt 2", l2)
		}
		if err := n.q.Complete(h.ctx, l1); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("Complete by the first holder: %v, want ErrLeaseLost", err)
		}
		if _, err := n.q.Extend(h.ctx, l1, time.Minute); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("Extend by the first holder: %v, want ErrLeaseLost", err)
		}
		if _, err := n.q.Fail(h.ctx, l1, errors.New("late"), queue.FailOptions{}); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("Fail by the first holder: %v, want ErrLeaseLost", err)
		}
		info = n.expectStatus(r.JobID, queue.StatusRunning)
		if info.LeaseToken != l2.Token || info.LeaseOwner != "worker-2" || info.Attempts != 2 {
			t.Errorf("after the first holder's late calls: lease (%q, %s, attempts %d), want worker-2's %s, 2", info.LeaseOwner, info.LeaseToken, info.Attempts, l2.Token)
		}

		n.advance(5 * time.Second)
		l2x, err := n.q.Extend(h.ctx, l2, time.Minute)
		if err != nil {
			t.Fatalf("Extend: %v", err)
		}
		if !l2x.ExpiresAt.Equal(n.now().Add(time.Minute)) {
			t.Errorf("extended expiry %v, want %v", l2x.ExpiresAt, n.now().Add(time.Minute))
		}
		n.advance(30 * time.Second) // past the original expiry, before the new one
		if res, fail, err := n.q.RescueExpired(h.ctx); err != nil || res+fail != 0 {
			t.Errorf("RescueExpired after Extend: %d, %d, %v; want nothing", res, fail, err)
		}
		n.none("acme", "while the extended lease is valid")
		n.complete(l2x)
		n.expectStatus(r.JobID, queue.StatusSucceeded)
		if err := n.q.Complete(h.ctx, l2x); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("second Complete: %v, want ErrLeaseLost", err)
		}

		// The last attempt expiring fails the job.
		last := job("last", "", 1)
		last.MaxAttempts = 1
		rl := n.enqueue(last)
		ll := n.one("last", queue.DequeueOptions{LeaseFor: 5 * time.Second})
		n.advance(6 * time.Second)
		if res, fail, err := n.q.RescueExpired(h.ctx); err != nil || res != 0 || fail != 1 {
			t.Errorf("RescueExpired of a last attempt: rescued %d, failed %d, %v; want 0, 1", res, fail, err)
		}
		if info := n.expectStatus(rl.JobID, queue.StatusFailed); info.LastError == "" {
			t.Errorf("failed by expiry without a last_error")
		}
		n.none("last", "after the last attempt expired")
		if err := n.q.Complete(h.ctx, ll); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("Complete after the last attempt expired: %v, want ErrLeaseLost", err)
		}
		n.expectStatus(rl.JobID, queue.StatusFailed)
	})
}

// testRetries: Fail reschedules after the backoff until attempts run out;
// NoRetry fails at once; Snooze costs no attempt; Cancel works on pending
// and running jobs and reports unknown and finished ones.
func testRetries(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		const backoff = 5 * time.Second
		n := h.newNode("node-a", base, o, func(c *queue.Config) {
			c.Backoff = func(int) time.Duration { return backoff }
		})

		j := job("retry", "", 1)
		j.MaxAttempts = 3
		r := n.enqueue(j)
		for attempt := 1; attempt <= 3; attempt++ {
			l := n.one("retry", queue.DequeueOptions{})
			if l.Attempt != attempt {
				t.Errorf("attempt %d: lease says attempt %d", attempt, l.Attempt)
			}
			msg := "boom " + string(rune('0'+attempt))
			fr, err := n.q.Fail(h.ctx, l, errors.New(msg), queue.FailOptions{})
			if err != nil {
				t.Fatalf("Fail attempt %d: %v", attempt, err)
			}
			if attempt < 3 {
				if !fr.Retried || !fr.RunAt.Equal(n.now().Add(backoff)) {
					t.Errorf("Fail attempt %d: %+v, want a retry at %v", attempt, fr, n.now().Add(backoff))
				}
				info := n.expectStatus(r.JobID, queue.StatusScheduled)
				if info.RunAt.UnixMilli() != n.now().Add(backoff).UnixMilli() || info.Attempts != attempt || info.LastError != msg {
					t.Errorf("after failed attempt %d: run_at %v, attempts %d, last_error %q", attempt, info.RunAt, info.Attempts, info.LastError)
				}
				n.none("retry", "right after a failure")
				n.advance(backoff - time.Millisecond)
				n.none("retry", "a millisecond before the backoff ends")
				n.advance(time.Millisecond)
				continue
			}
			if fr.Retried {
				t.Errorf("Fail of the last attempt retried: %+v", fr)
			}
			info := n.expectStatus(r.JobID, queue.StatusFailed)
			if info.LastError != msg || info.Attempts != 3 {
				t.Errorf("after the last attempt: last_error %q attempts %d, want %q 3", info.LastError, info.Attempts, msg)
			}
		}
		n.advance(time.Hour)
		n.none("retry", "after the job failed for good")

		nr := job("noretry", "", 1)
		nr.MaxAttempts = 5
		rn := n.enqueue(nr)
		l := n.one("noretry", queue.DequeueOptions{})
		if fr, err := n.q.Fail(h.ctx, l, errors.New("fatal"), queue.FailOptions{NoRetry: true}); err != nil || fr.Retried {
			t.Errorf("Fail NoRetry: %+v, %v", fr, err)
		}
		if info := n.expectStatus(rn.JobID, queue.StatusFailed); info.LastError != "fatal" {
			t.Errorf("NoRetry last_error %q", info.LastError)
		}

		sj := job("snooze", "", 1)
		sj.MaxAttempts = 1
		rs := n.enqueue(sj)
		l = n.one("snooze", queue.DequeueOptions{})
		if err := n.q.Snooze(h.ctx, l, 30*time.Second); err != nil {
			t.Fatalf("Snooze: %v", err)
		}
		if info := n.expectStatus(rs.JobID, queue.StatusScheduled); info.Attempts != 0 {
			t.Errorf("after Snooze: attempts %d, want 0 (a snooze is not an attempt)", info.Attempts)
		}
		n.advance(29 * time.Second)
		n.none("snooze", "before the snooze ends")
		n.advance(time.Second)
		l = n.one("snooze", queue.DequeueOptions{})
		if l.Attempt != 1 {
			t.Errorf("after a snooze: attempt %d, want 1", l.Attempt)
		}
		n.complete(l) // its only attempt is still available after the snooze
		n.expectStatus(rs.JobID, queue.StatusSucceeded)

		rc := n.enqueue(job("cancel", "", 1))
		if err := n.q.Cancel(h.ctx, rc.JobID, "not needed"); err != nil {
			t.Fatalf("Cancel pending: %v", err)
		}
		n.expectStatus(rc.JobID, queue.StatusCancelled)
		n.none("cancel", "after the pending job was cancelled")
		rr := n.enqueue(job("cancel", "", 2))
		l = n.one("cancel", queue.DequeueOptions{})
		if err := n.q.Cancel(h.ctx, rr.JobID, "stop"); err != nil {
			t.Fatalf("Cancel running: %v", err)
		}
		if err := n.q.Complete(h.ctx, l); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("holder's Complete after Cancel: %v, want ErrLeaseLost", err)
		}
		n.expectStatus(rr.JobID, queue.StatusCancelled)
		if err := n.q.Cancel(h.ctx, uuid.New(), ""); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("Cancel of an unknown job: %v, want ErrJobNotFound", err)
		}
		for _, id := range []uuid.UUID{rc.JobID, rs.JobID, r.JobID} {
			if err := n.q.Cancel(h.ctx, id, ""); !errors.Is(err, queue.ErrJobFinished) {
				t.Errorf("Cancel of finished job %s: %v, want ErrJobFinished", id, err)
			}
		}
		if _, err := n.q.Get(h.ctx, uuid.New()); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("Get of an unknown job: %v, want ErrJobNotFound", err)
		}
	})
}

// testRunAt: a job with a future RunAt is scheduled and not handed out
// before its time.
func testRunAt(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		later := job("acme", "", 1)
		later.RunAt = n.now().Add(time.Minute)
		rl := n.enqueue(later)
		past := job("acme", "", 2)
		past.RunAt = n.now().Add(-time.Hour)
		rp := n.enqueue(past)
		if info := n.expectStatus(rl.JobID, queue.StatusScheduled); !info.RunAt.Equal(later.RunAt) {
			t.Errorf("run_at %v, want %v", info.RunAt, later.RunAt)
		}
		n.expectStatus(rp.JobID, queue.StatusPending)
		got := n.dequeue(queue.DequeueOptions{Limit: 10})
		if len(got) != 1 || got[0].JobID != rp.JobID {
			t.Fatalf("dequeued %v, want only the job due now", ids(got))
		}
		n.complete(got[0])
		n.advance(time.Minute - time.Millisecond)
		n.none("acme", "a millisecond before run_at")
		n.expectStatus(rl.JobID, queue.StatusScheduled)
		n.advance(time.Millisecond)
		l := n.one("acme", queue.DequeueOptions{})
		if l.JobID != rl.JobID || !l.RunAt.Equal(later.RunAt) {
			t.Errorf("lease %+v, want the scheduled job with its run_at", l)
		}
		n.expectStatus(rl.JobID, queue.StatusRunning)
		n.complete(l)
	})
}

// testStrictPartitions: one running job per partition, in chain order
// (enqueue order, created_at, on legacy reads), with a retrying head
// blocking its partition.
func testStrictPartitions(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o, func(c *queue.Config) {
			c.Backoff = func(int) time.Duration { return 5 * time.Second }
		})
		name := map[uuid.UUID]string{}
		for i, s := range []struct{ name, partition string }{{"a1", "p1"}, {"b1", "p2"}, {"a2", "p1"}, {"b2", "p2"}, {"a3", "p1"}} {
			j := job("acme", s.partition, i)
			j.Priority = 10 - i // legacy order would agree; make sure priority cannot reorder
			if s.name == "a3" {
				j.Priority = 100
			}
			name[n.enqueue(j).JobID] = s.name
			n.advance(time.Millisecond)
		}
		strict := queue.DequeueOptions{StrictPartitions: true, Limit: 10}
		take := func(want ...string) map[string]queue.Lease {
			t.Helper()
			got := n.dequeue(strict)
			m := map[string]queue.Lease{}
			var names []string
			for _, l := range got {
				m[name[l.JobID]] = l
				names = append(names, name[l.JobID])
			}
			if len(got) != len(want) || len(m) != len(want) {
				t.Fatalf("strict dequeue gave %v, want %v", names, want)
			}
			for _, w := range want {
				if _, ok := m[w]; !ok {
					t.Fatalf("strict dequeue gave %v, want %v", names, want)
				}
			}
			return m
		}
		first := take("a1", "b1")
		take()
		n.complete(first["a1"])
		a2 := take("a2")["a2"]
		n.complete(first["b1"])
		b2 := take("b2")["b2"]
		if fr, err := n.q.Fail(h.ctx, a2, errors.New("try again"), queue.FailOptions{}); err != nil || !fr.Retried {
			t.Fatalf("Fail a2: %+v, %v", fr, err)
		}
		take() // a2 waits for its retry; a3 must not overtake it
		n.advance(5 * time.Second)
		a2 = take("a2")["a2"]
		if a2.Attempt != 2 {
			t.Errorf("a2 retried as attempt %d", a2.Attempt)
		}
		n.complete(a2)
		a3 := take("a3")["a3"]
		n.complete(a3)
		n.complete(b2)
		take()
		if l, s := h.unfinished(); l+s != 0 {
			t.Errorf("unfinished after all: %d legacy, %d hlc", l, s)
		}
	})
}

// side is a job's row on one side, as stored.
type side struct {
	Status    string
	Attempts  int64
	RunAt     int64 // Unix ms
	LastError string
	Token     string // "" when NULL
}

// bothSides reads a job's row on the legacy side and on the HLC side and
// fails the test unless both exist.
func (h *harness) bothSides(id uuid.UUID) [2]side {
	h.t.Helper()
	var out [2]side
	for i, q := range []string{
		"SELECT status, attempts, run_at, COALESCE(last_error, ''), COALESCE(CAST(lease_token AS TEXT), '') FROM {jobs} WHERE id = ?",
		"SELECT status, attempts, run_at, COALESCE(last_error, ''), COALESCE(CAST(lease_token AS TEXT), '') FROM {job_state} WHERE job_id = ?",
	} {
		var runAt any
		s := &out[i]
		if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(q), id.String()).Scan(&s.Status, &s.Attempts, &runAt, &s.LastError, &s.Token); err != nil {
			h.t.Fatalf("%s (job %s): %v", q, id, err)
		}
		s.RunAt = millis(h.t, runAt)
	}
	return out
}

// expectSides checks a job's row on both sides against want.
func (h *harness) expectSides(what string, id uuid.UUID, want side) {
	h.t.Helper()
	for i, got := range h.bothSides(id) {
		if got != want {
			h.t.Errorf("%s: %s row of job %s is %+v, want %+v", what, []string{"legacy", "job_state"}[i], id, got, want)
		}
	}
}

// testStoredLeaseState: with both sides written, every lease change lands
// on both rows exactly: the lease (status, attempts, token), a rescue
// (pending now, the attempt kept, the reason, the lease cleared), a rescue
// of a last attempt, the rescuer's limit, a retry, a snooze that gives the
// attempt back, and a cancellation (its reason, the lease cleared). A
// stale holder's MarkChainViolation changes nothing.
func testStoredLeaseState(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes[1:3], func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		lease := queue.DequeueOptions{Owner: "worker-1", LeaseFor: 30 * time.Second}

		// A lease, rescued, and fenced.
		created := n.now()
		r := n.enqueue(job("fence", "", 1))
		n.advance(time.Millisecond)
		l1 := n.one("fence", lease)
		if !l1.CreatedAt.Equal(created) || l1.Chain != nil || l1.Attempt != 1 || l1.MaxAttempts != 25 {
			t.Errorf("lease %+v: want created_at %v, attempt 1 of 25, no chain entry without VerifyOnDequeue", l1, created)
		}
		h.expectSides("leased", r.JobID, side{Status: "running", Attempts: 1, RunAt: created.UnixMilli(), Token: l1.Token.String()})
		n.advance(31 * time.Second)
		if rr, err := n.b.RescueExpired(h.ctx, driver.RescueParams{Now: n.now(), Limit: 10}); err != nil || rr.Rescued != 1 || rr.Failed != 0 {
			t.Fatalf("RescueExpired: %+v, %v; want 1 rescued", rr, err)
		}
		h.expectSides("rescued", r.JobID, side{Status: "pending", Attempts: 1, RunAt: n.now().UnixMilli(), LastError: "lease expired (owner worker-1)"})
		l2 := n.one("fence", queue.DequeueOptions{Owner: "worker-2", LeaseFor: 30 * time.Second})
		if l2.Attempt != 2 {
			t.Errorf("second lease: attempt %d, want 2", l2.Attempt)
		}
		// A stale holder's MarkChainViolation changes nothing and says so,
		// as a stale TransitionJob does.
		if err := n.b.MarkChainViolation(h.ctx, driver.ViolationParams{JobID: r.JobID, Token: l1.Token, Reason: "x", Now: n.now()}); !errors.Is(err, driver.ErrLeaseLost) {
			t.Errorf("stale holder's MarkChainViolation: %v, want ErrLeaseLost", err)
		}
		l2x, err := n.q.Extend(h.ctx, l2, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if info := n.expectStatus(r.JobID, queue.StatusRunning); info.LeaseToken != l2.Token || info.LeaseOwner != "worker-2" ||
			info.LeaseExpiresAt.UnixMilli() != n.now().Add(time.Hour).UnixMilli() || info.Attempts != 2 {
			t.Errorf("after Extend: %+v; want worker-2's lease until %v, attempts 2", info, n.now().Add(time.Hour))
		}
		n.complete(l2x)
		// The lease ends, but its token stays: the job finished under it.
		if info := n.expectStatus(r.JobID, queue.StatusSucceeded); info.LeaseOwner != "" || !info.LeaseExpiresAt.IsZero() ||
			info.LeaseToken != l2.Token || !info.InLegacy || !info.InHLC {
			t.Errorf("after completion: %+v; want the lease ended with its token kept (%s), on both sides", info, l2.Token)
		}

		// The rescuer's limit, and a last attempt expiring.
		last := job("rescue", "", 0)
		last.MaxAttempts = 1
		rl := n.enqueue(last)
		var others []uuid.UUID
		for i := 1; i <= 3; i++ {
			others = append(others, n.enqueue(job("rescue", "", i)).JobID)
		}
		if ls := n.dequeue(queue.DequeueOptions{TenantID: "rescue", Owner: "worker-1", Limit: 10, LeaseFor: 30 * time.Second}); len(ls) != 4 {
			t.Fatalf("leased %d, want 4", len(ls))
		}
		n.advance(time.Minute)
		rr1, err := n.b.RescueExpired(h.ctx, driver.RescueParams{Now: n.now(), Limit: 3})
		if err != nil || rr1.Rescued+rr1.Failed != 3 {
			t.Fatalf("RescueExpired(Limit 3): %+v, %v; want 3 jobs", rr1, err)
		}
		rr2, err := n.b.RescueExpired(h.ctx, driver.RescueParams{Now: n.now(), Limit: 3})
		if err != nil || rr2.Rescued+rr2.Failed != 1 || rr1.Rescued+rr2.Rescued != 3 || rr1.Failed+rr2.Failed != 1 {
			t.Fatalf("second RescueExpired: %+v, %v after %+v; want 3 rescued and 1 failed in all", rr2, err, rr1)
		}
		for _, s := range h.bothSides(rl.JobID) {
			if s.Status != "failed" || s.LastError != "lease expired on the last attempt (owner worker-1)" {
				t.Errorf("last attempt expired: row %+v, want failed with the reason", s)
			}
		}
		if got := n.dequeue(queue.DequeueOptions{TenantID: "rescue", Limit: 10}); !sameSet(ids(got), others) {
			t.Errorf("after the rescue leased %v, want the three with attempts left", ids(got))
		}

		// A retry, a snooze to now, and cancellations.
		a, b, c := n.enqueue(job("moves", "", 1)).JobID, n.enqueue(job("moves", "", 2)).JobID, n.enqueue(job("moves", "", 3)).JobID
		held := map[uuid.UUID]queue.Lease{}
		for _, l := range n.dequeue(queue.DequeueOptions{TenantID: "moves", Limit: 10, LeaseFor: time.Hour}) {
			held[l.JobID] = l
		}
		if len(held) != 3 {
			t.Fatalf("leased %d, want 3", len(held))
		}
		if err := n.b.TransitionJob(h.ctx, driver.Transition{JobID: a, Token: held[a].Token, Status: driver.StatusScheduled,
			RunAt: n.now().Add(time.Minute), Error: "boom", Now: n.now()}); err != nil {
			t.Fatal(err)
		}
		if err := n.b.TransitionJob(h.ctx, driver.Transition{JobID: b, Token: held[b].Token, Status: driver.StatusScheduled,
			RunAt: n.now(), UndoAttempt: true, Now: n.now()}); err != nil {
			t.Fatal(err)
		}
		// Each keeps the token of the lease it ended (see driver.JobInfo).
		h.expectSides("retry", a, side{Status: "scheduled", Attempts: 1, RunAt: n.now().Add(time.Minute).UnixMilli(), LastError: "boom", Token: held[a].Token.String()})
		for _, s := range h.bothSides(b) {
			if s.Status != "pending" || s.Attempts != 0 || s.LastError != "" || s.Token != held[b].Token.String() {
				t.Errorf("snooze to now: row %+v, want pending, attempt given back, no error, the ended lease's token", s)
			}
		}
		if err := n.q.Cancel(h.ctx, a, "not needed"); err != nil {
			t.Fatal(err)
		}
		if info := n.expectStatus(a, queue.StatusCancelled); info.LastError != "not needed" {
			t.Errorf("cancelled job: last_error %q, want the reason", info.LastError)
		}
		if err := n.q.Cancel(h.ctx, c, ""); err != nil {
			t.Fatal(err)
		}
		if err := n.q.Complete(h.ctx, held[c]); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("holder of a cancelled job: %v, want ErrLeaseLost", err)
		}
		for _, s := range h.bothSides(c) {
			if s.Status != "cancelled" || s.Token != "" {
				t.Errorf("cancelled running job: row %+v, want cancelled with the lease cleared", s)
			}
		}
	})
}

// testStrictScheduledHead: under strict partitions a head scheduled for
// later blocks its partition until due; a partition is a tenant's (the
// same key in two tenants is two partitions), the default partition "" is
// one too; priority never jumps a partition's queue; a failed head retries
// before its successors; and without strict partitions the jobs behind a
// running head run beside it.
func testStrictScheduledHead(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o, func(c *queue.Config) {
			c.Backoff = func(int) time.Duration { return time.Minute }
		})
		mk := func(tenant, partition string, i int, mods ...func(*queue.Job)) uuid.UUID {
			j := job(tenant, partition, i)
			for _, m := range mods {
				m(&j)
			}
			return n.enqueue(j).JobID
		}
		x1 := mk("acme", "p1", 1)
		y1 := mk("acme", "p2", 2)
		z1 := mk("beta", "p1", 3, func(j *queue.Job) { j.RunAt = n.now().Add(time.Hour) })
		d1 := mk("beta", "", 4)
		n.advance(time.Millisecond)
		x2 := mk("acme", "p1", 5, func(j *queue.Job) { j.Priority = 9 }) // later in its partition: priority does not jump the queue
		y2 := mk("acme", "p2", 6)
		z2 := mk("beta", "p1", 7)
		strict := queue.DequeueOptions{StrictPartitions: true, Limit: 100}
		expect := func(what string, got []queue.Lease, want ...uuid.UUID) {
			t.Helper()
			if !sameSet(ids(got), want) {
				t.Fatalf("%s: leased %v, want %v", what, ids(got), want)
			}
		}
		got := n.dequeue(strict)
		expect("strict dequeue (z1 waits for its run_at and blocks z2)", got, x1, y1, d1)
		expect("strict dequeue while every head runs or waits", n.dequeue(strict))
		byID := map[uuid.UUID]queue.Lease{}
		for _, l := range got {
			byID[l.JobID] = l
		}
		if fr, err := n.q.Fail(h.ctx, byID[x1], errors.New("boom"), queue.FailOptions{}); err != nil || !fr.Retried {
			t.Fatalf("Fail x1: %+v, %v", fr, err)
		}
		n.complete(byID[y1])
		expect("x1 waits for its retry, x2 behind it", n.dequeue(strict), y2)
		n.advance(time.Minute)
		got = n.dequeue(strict)
		expect("after the retry delay", got, x1)
		if got[0].Attempt != 2 {
			t.Errorf("x1 retried as attempt %d, want 2", got[0].Attempt)
		}
		n.complete(got[0])
		expect("after x1", n.dequeue(strict), x2)
		n.advance(time.Hour)
		expect("z1 due", n.dequeue(strict), z1)
		expect("non-strict dequeue beside the running z1", n.dequeue(queue.DequeueOptions{Limit: 100}), z2)
	})
}
