package drivertest

import (
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// legacyCreated reads created_at of every legacy row, in Unix ms.
func (h *harness) legacyCreated() map[uuid.UUID]int64 {
	h.t.Helper()
	rs, err := h.tg.DB.QueryContext(h.ctx, h.sql("SELECT CAST(id AS TEXT), created_at FROM {jobs}"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer rs.Close()
	out := map[uuid.UUID]int64{}
	for rs.Next() {
		var id string
		var created any
		if err := rs.Scan(&id, &created); err != nil {
			h.t.Fatal(err)
		}
		out[uuid.MustParse(id)] = millis(h.t, created)
	}
	if err := rs.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// testBackfill: legacy jobs still to run are appended to their chains,
// fully linked, with their created_at, state and lease; finished ones are
// not; a second run adds nothing; a tenant's backfill touches only it.
func testBackfill(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[0])
		id := map[string]uuid.UUID{}
		created := map[string]int64{}
		for _, s := range []struct{ name, tenant, partition string }{
			{"a0", "t1", "x"}, {"b0", "t2", ""}, {"c0", "t3", "z"}, {"a1", "t1", "y"}, {"b1", "t2", ""},
			{"c1", "t3", "z"}, {"a2", "t1", "x"}, {"b2", "t2", ""}, {"a3", "t1", "y"},
		} {
			j := job(s.tenant, s.partition, len(id))
			if s.name == "b2" {
				j.RunAt = n.now().Add(time.Hour)
			}
			id[s.name] = n.enqueue(j).JobID
			created[s.name] = n.wall.UnixMilli()
			n.advance(time.Second)
		}
		got := n.dequeue(queue.DequeueOptions{TenantID: "t1", Limit: 2, LeaseFor: time.Hour})
		if !sameSet(ids(got), []uuid.UUID{id["a0"], id["a1"]}) {
			t.Fatalf("legacy dequeue of t1 gave %v, want a0 and a1", ids(got))
		}
		var a1 queue.Lease
		for _, l := range got {
			if l.JobID == id["a0"] {
				n.complete(l)
			} else {
				a1 = l
			}
		}
		if err := n.q.Cancel(h.ctx, id["c1"], "obsolete"); err != nil {
			t.Fatal(err)
		}
		if got := h.rows(); got != (rows{Jobs: 9}) {
			t.Fatalf("legacy mode wrote %v", got)
		}

		backfill := func(tenant string, want int) {
			t.Helper()
			k, err := n.q.Backfill(h.ctx, tenant)
			if err != nil || k != want {
				t.Fatalf("Backfill(%q) = %d, %v; want %d", tenant, k, err, want)
			}
		}
		backfill("t2", 3)
		if other := h.count("SELECT count(*) FROM {scheduler_log} WHERE tenant_id <> 't2'"); other != 0 {
			t.Errorf("Backfill(t2) wrote %d entries of other tenants", other)
		}
		backfill("t2", 0)
		backfill("", 4)
		backfill("", 0)
		if c := counter(t, n.q.Metrics().Backfilled); c != 7 {
			t.Errorf("backfilled counter %v, want 7", c)
		}

		log := h.verifyChains()
		idx := byJob(log)
		want := []string{"a1", "a2", "a3", "b0", "b1", "b2", "c0"}
		var wantIDs, gotIDs []uuid.UUID
		for _, w := range want {
			wantIDs = append(wantIDs, id[w])
		}
		for k := range idx {
			gotIDs = append(gotIDs, k)
		}
		if !sameSet(gotIDs, wantIDs) {
			t.Fatalf("backfilled %v, want the unfinished %v", gotIDs, want)
		}
		legacyCreated := h.legacyCreated()
		for _, w := range want {
			e := idx[id[w]]
			if e.CreatedAt != created[w] || e.CreatedAt != legacyCreated[id[w]] {
				t.Errorf("%s: scheduler_log.created_at %d, want the legacy created_at %d", w, e.CreatedAt, created[w])
			}
		}
		for k, es := range log {
			for i := 1; i < len(es); i++ {
				if es[i].CreatedAt < es[i-1].CreatedAt {
					t.Errorf("chain %v: backfilled out of created_at order", k)
				}
			}
		}
		if info := n.expectStatus(id["a1"], queue.StatusRunning); info.LeaseToken != a1.Token || info.Attempts != 1 || !info.InHLC {
			t.Errorf("backfilled running job: token %s attempts %d InHLC %v, want the legacy lease %s, 1", info.LeaseToken, info.Attempts, info.InHLC, a1.Token)
		}
		if tok := h.leaseToken("job_state", "job_id", id["a1"]); tok != a1.Token.String() {
			t.Errorf("job_state.lease_token of the backfilled running job = %q, want %s", tok, a1.Token)
		}
		if info := n.expectStatus(id["b2"], queue.StatusScheduled); info.RunAt.UnixMilli() != created["b2"]+time.Hour.Milliseconds() {
			t.Errorf("backfilled scheduled job: run_at %v, want the legacy run_at", info.RunAt)
		}
		for _, w := range []string{"a2", "a3", "b0", "b1", "c0"} {
			n.expectStatus(id[w], queue.StatusPending)
		}
		for _, w := range []string{"a0", "c1"} {
			if info := n.get(id[w]); info.InHLC {
				t.Errorf("finished job %s was backfilled", w)
			}
		}

		// Switching to HLC reads adds nothing more; everything runs once.
		if err := n.q.SetOptions(h.ctx, modes[2]); err != nil {
			t.Fatal(err)
		}
		if c := h.count("SELECT count(*) FROM {scheduler_log}"); c != 7 {
			t.Errorf("after switching to HLC reads the log has %d entries, want 7", c)
		}
		n.complete(a1)
		n.expectStatus(id["a1"], queue.StatusSucceeded)
		n.advance(2 * time.Hour)
		var rest []uuid.UUID
		for range 10 {
			ls := n.dequeue(queue.DequeueOptions{Limit: 1})
			if len(ls) == 0 {
				break
			}
			rest = append(rest, ls[0].JobID)
			n.complete(ls[0])
		}
		if !sameSet(rest, []uuid.UUID{id["a2"], id["a3"], id["b0"], id["b1"], id["b2"], id["c0"]}) {
			t.Errorf("after backfill, HLC reads handed out %v", rest)
		}
		if l, s := h.unfinished(); l+s != 0 {
			t.Errorf("unfinished after draining: %d legacy, %d hlc", l, s)
		}
	})
}

// testRollbackDrain: jobs enqueued in HLC-only mode are copied to the
// legacy table with state and lease, once, and legacy reads then run them.
func testRollbackDrain(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[3])
		var id []uuid.UUID
		for i := range 6 {
			j := job("acme", []string{"p0", "p1"}[i%2], i)
			if i == 5 {
				j.RunAt = n.now().Add(time.Hour)
			}
			id = append(id, n.enqueue(j).JobID)
			n.advance(time.Second)
		}
		held := map[uuid.UUID]queue.Lease{}
		for range 3 {
			l := n.one("acme", queue.DequeueOptions{LeaseFor: time.Hour})
			held[l.JobID] = l
		}
		if len(held) != 3 || held[id[0]].JobID != id[0] || held[id[1]].JobID != id[1] || held[id[2]].JobID != id[2] {
			t.Fatalf("HLC reads handed out %v, want the first three jobs", held)
		}
		n.complete(held[id[0]])
		delete(held, id[0])
		if got := h.rows(); got.Jobs != 0 {
			t.Fatalf("HLC-only mode wrote %d legacy rows", got.Jobs)
		}

		if k, err := n.q.RollbackDrain(h.ctx); err != nil || k != 5 {
			t.Fatalf("RollbackDrain = %d, %v; want 5", k, err)
		}
		if k, err := n.q.RollbackDrain(h.ctx); err != nil || k != 0 {
			t.Errorf("second RollbackDrain = %d, %v; want 0", k, err)
		}
		if c := h.count("SELECT count(*) FROM {jobs}"); c != 5 {
			t.Errorf("legacy table has %d rows after the drain, want 5", c)
		}
		if info, _ := n.q.Get(h.ctx, id[0]); info.InLegacy {
			t.Errorf("the finished job was drained")
		}
		log := byJob(h.readLog())
		legacyCreated := h.legacyCreated()
		for i, x := range id[1:] {
			if legacyCreated[x] != log[x].CreatedAt {
				t.Errorf("job %d: legacy created_at %d, log created_at %d", i+1, legacyCreated[x], log[x].CreatedAt)
			}
			var digest string
			if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT payload_digest FROM {jobs} WHERE id = ?"), x.String()).Scan(&digest); err != nil {
				t.Fatal(err)
			}
			var ph chain.Hash
			copy(ph[:], log[x].PayloadHash)
			if want := ph.String(); digest != want {
				t.Errorf("job %d: payload_digest %s, want %s", i+1, digest, want)
			}
		}
		for x, l := range held {
			if tok := h.leaseToken("jobs", "id", x); tok != l.Token.String() {
				t.Errorf("drained running job %s: legacy lease_token %q, want %s", x, tok, l.Token)
			}
			n.expectStatus(x, queue.StatusRunning)
			if a := h.count("SELECT attempts FROM {jobs} WHERE id = ?", x.String()); a != 1 {
				t.Errorf("drained running job %s: legacy attempts %d, want 1", x, a)
			}
		}
		n.expectStatus(id[5], queue.StatusScheduled)
		var runAt any
		if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT run_at FROM {jobs} WHERE id = ?"), id[5].String()).Scan(&runAt); err != nil {
			t.Fatal(err)
		}
		if got, want := millis(t, runAt), base+5000+time.Hour.Milliseconds(); got != want {
			t.Errorf("drained scheduled job: legacy run_at %d, want its run_at %d", got, want)
		}

		if err := n.q.SetOptions(h.ctx, modes[0]); err != nil {
			t.Fatal(err)
		}
		if c := h.count("SELECT count(*) FROM {jobs}"); c != 5 {
			t.Errorf("after switching to legacy the table has %d rows, want 5", c)
		}
		for x, l := range held {
			n.complete(l)
			n.expectStatus(x, queue.StatusSucceeded)
		}
		// Legacy order (priority, then the original created_at) is the
		// order the jobs were enqueued in.
		for _, want := range []uuid.UUID{id[3], id[4]} {
			l := n.one("acme", queue.DequeueOptions{})
			if l.JobID != want {
				t.Errorf("legacy read gave %s, want %s", l.JobID, want)
			}
			n.complete(l)
		}
		n.none("acme", "before the scheduled job is due")
		n.advance(time.Hour)
		l := n.one("acme", queue.DequeueOptions{})
		if l.JobID != id[5] {
			t.Errorf("legacy read gave %s, want the scheduled job", l.JobID)
		}
		n.complete(l)
		if l, s := h.unfinished(); l+s != 0 {
			t.Errorf("unfinished after draining: %d legacy, %d hlc", l, s)
		}
	})
}

// legacyPrepared turns a listed legacy job into the input of a backfill,
// as Queue.Backfill does.
func legacyPrepared(t *testing.T, li driver.JobInfo) *driver.Prepared {
	t.Helper()
	hash, err := chain.PayloadHash(li.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return &driver.Prepared{TenantID: li.TenantID, PartitionKey: li.PartitionKey, Kind: li.Kind, Payload: li.Payload, PayloadHash: hash,
		JobID: li.JobID, Priority: li.Priority, RunAt: li.RunAt, MaxAttempts: li.MaxAttempts, Status: li.Status, CreatedAt: li.CreatedAt,
		Attempts: li.Attempts, LeaseOwner: li.LeaseOwner, LeaseToken: li.LeaseToken, LeaseExpiresAt: li.LeaseExpiresAt, LastError: li.LastError}
}

func infoIDs(infos []driver.JobInfo) []uuid.UUID {
	out := make([]uuid.UUID, len(infos))
	for i, li := range infos {
		out[i] = li.JobID
	}
	return out
}

// testBackfillStaleListing: LegacyOnly lists the unfinished legacy jobs
// oldest first, with their lease, optionally of one tenant; a backfill of
// a listing that went stale (a job was leased after it was listed) copies
// each job's state as it is when the backfill runs, keeps created_at, and
// a second backfill of the same listing adds nothing.
func testBackfillStaleListing(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[0])
		done := job("a", "", 5)
		done.Priority = 100
		rDone := n.enqueue(done)
		n.complete(n.one("a", queue.DequeueOptions{}))
		n.advance(time.Millisecond)
		a1 := n.enqueue(job("a", "", 1)).JobID
		a1Created := n.now()
		n.advance(time.Millisecond)
		a2 := n.enqueue(job("a", "eu", 2)).JobID
		n.advance(time.Millisecond)
		rs := n.enqueueMany([]queue.Job{job("a", "", 3), job("b", "", 4)})
		a3, b1 := rs[0].JobID, rs[1].JobID
		b1Created := n.now()
		running := n.one("b", queue.DequeueOptions{Owner: "worker-1", LeaseFor: time.Minute})

		listed, err := n.b.LegacyOnly(h.ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := infoIDs(listed); len(got) != 4 || got[0] != a1 || got[1] != a2 || !sameSet(got[2:], []uuid.UUID{a3, b1}) {
			t.Fatalf("LegacyOnly listed %v, want a1, a2, then a3 and b1 (oldest first, the finished job left out)", got)
		}
		for _, li := range listed {
			if li.JobID == b1 && (li.Status != driver.StatusRunning || li.Attempts != 1 || li.LeaseToken != running.Token || li.LeaseOwner != "worker-1" || li.LeaseExpiresAt.IsZero()) {
				t.Errorf("listed running job: %+v", li)
			}
		}
		if only, err := n.b.LegacyOnly(h.ctx, "b", 10); err != nil || !slices.Equal(infoIDs(only), []uuid.UUID{b1}) {
			t.Errorf("LegacyOnly(b) = %v, %v; want b1", infoIDs(only), err)
		}

		// a1 is leased after it was listed: the backfill must take its state as of now.
		var stale []*driver.Prepared
		for _, li := range listed {
			stale = append(stale, legacyPrepared(t, li))
		}
		late := n.one("a", queue.DequeueOptions{Owner: "worker-9", LeaseFor: time.Minute})
		if late.JobID != a1 {
			t.Fatalf("leased %s, want a1", late.JobID)
		}
		if k, err := n.b.Backfill(h.ctx, driver.NewEnqueueBatch(stale, false, true, n.clock, n.now())); err != nil || k != 4 {
			t.Fatalf("Backfill: %d, %v; want 4", k, err)
		}
		if k, err := n.b.Backfill(h.ctx, driver.NewEnqueueBatch(stale, false, true, n.clock, n.now())); err != nil || k != 0 {
			t.Errorf("second Backfill: %d, %v; want 0", k, err)
		}
		if rest, err := n.b.LegacyOnly(h.ctx, "", 10); err != nil || len(rest) != 0 {
			t.Errorf("LegacyOnly after the backfill: %v, %v", infoIDs(rest), err)
		}
		idx := byJob(h.verifyChains())
		for _, c := range []struct {
			id      uuid.UUID
			created time.Time
			lease   queue.Lease
		}{{b1, b1Created, running}, {a1, a1Created, late}} {
			info := n.expectStatus(c.id, queue.StatusRunning)
			if !info.InHLC || info.Attempts != 1 || info.LeaseToken != c.lease.Token || info.LeaseOwner != c.lease.Owner ||
				info.LeaseExpiresAt.UnixMilli() != c.lease.ExpiresAt.UnixMilli() || !info.CreatedAt.Equal(c.created) {
				t.Errorf("backfilled running job %s: %+v; want the lease of %s (%s until %v), created %v", c.id, info, c.lease.Owner, c.lease.Token, c.lease.ExpiresAt, c.created)
			}
			if tok := h.leaseToken("job_state", "job_id", c.id); tok != c.lease.Token.String() {
				t.Errorf("backfilled running job %s: job_state.lease_token %q, want %s", c.id, tok, c.lease.Token)
			}
			if e := idx[c.id]; e.CreatedAt != c.created.UnixMilli() {
				t.Errorf("backfilled job %s: log created_at %d, want the original %d", c.id, e.CreatedAt, c.created.UnixMilli())
			}
			n.complete(c.lease) // the holder finishes on both sides
			n.expectStatus(c.id, queue.StatusSucceeded)
		}
		if _, hlcSide := h.sides(rDone.JobID); hlcSide != "" {
			t.Error("a finished legacy job was backfilled")
		}
	})
}

// testDrainRows: a drained job's legacy row keeps its partition as
// project_id (NULL for the default partition) and is stamped updated_at
// with the drain's time.
func testDrainRows(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[3])
		h1, h2 := n.enqueue(job("h", "", 6)).JobID, n.enqueue(job("h", "p", 7)).JobID
		created := n.now()
		l := n.one("h", queue.DequeueOptions{Limit: 1, LeaseFor: time.Hour})
		if l.JobID != h1 {
			t.Fatalf("leased %s, want h1", l.JobID)
		}
		n.advance(time.Second)
		if k, err := n.b.DrainToLegacy(h.ctx, 10, n.now()); err != nil || k != 2 {
			t.Fatalf("DrainToLegacy: %d, %v; want 2", k, err)
		}
		if k, err := n.b.DrainToLegacy(h.ctx, 10, n.now()); err != nil || k != 0 {
			t.Errorf("second DrainToLegacy: %d, %v; want 0", k, err)
		}
		var status, digest, token string
		var project sql.NullString
		var attempts int64
		var createdAt, updatedAt any
		if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(`SELECT status, payload_digest, project_id, attempts, CAST(lease_token AS TEXT), created_at, updated_at
			FROM {jobs} WHERE id = ?`), h1.String()).Scan(&status, &digest, &project, &attempts, &token, &createdAt, &updatedAt); err != nil {
			t.Fatal(err)
		}
		ph, _ := chain.PayloadHash(job("h", "", 6).Payload)
		if status != "running" || digest != ph.String() || project.Valid || attempts != 1 || token != l.Token.String() ||
			millis(t, createdAt) != created.UnixMilli() || millis(t, updatedAt) != n.now().UnixMilli() {
			t.Errorf("drained running job: (%s, %s, project_id %v, attempts %d, %s, created_at %d, updated_at %d), want (running, %s, NULL, 1, %s, %d, %d)",
				status, digest, project, attempts, token, millis(t, createdAt), millis(t, updatedAt), ph, l.Token, created.UnixMilli(), n.now().UnixMilli())
		}
		if err := h.tg.DB.QueryRowContext(h.ctx, h.sql("SELECT project_id FROM {jobs} WHERE id = ?"), h2.String()).Scan(&project); err != nil {
			t.Fatal(err)
		}
		if !project.Valid || project.String != "p" {
			t.Errorf("drained project_id %v, want p", project)
		}
		n.complete(l) // fenced on both sides
		n.expectStatus(h1, queue.StatusSucceeded)
		if err := n.q.SetOptions(h.ctx, modes[0]); err != nil {
			t.Fatal(err)
		}
		if got := n.dequeue(queue.DequeueOptions{TenantID: "h", Limit: 10}); !slices.Equal(ids(got), []uuid.UUID{h2}) {
			t.Errorf("legacy read after the drain leased %v, want h2", ids(got))
		}
	})
}
