package drivertest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// ops returns the backend's operator state.
func (n *node) ops() driver.Operations { return n.b }

// testPausedQueues: a paused queue (a tenant's, or one kind of it) is
// skipped by Dequeue in every mode and every dequeue shape (all tenants,
// one tenant, fair sharing, strict partitions), other queues are not held
// back by it (its jobs do not use up the batch), and resuming hands its
// jobs out again, in order.
func testPausedQueues(t *testing.T, newTarget func(t *testing.T) Target) {
	shapes := []struct {
		name string
		opts queue.DequeueOptions
	}{
		{"all tenants", queue.DequeueOptions{}},
		{"fair", queue.DequeueOptions{FairTenants: true}},
		{"strict", queue.DequeueOptions{StrictPartitions: true}},
	}
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ops := n.ops()
		// acme: report jobs, then email jobs; globex: report jobs. Each in
		// its own partition so strict partitions can hand them all out.
		var acmeReports, acmeEmails, globex []uuid.UUID
		for i := range 3 {
			j := job("acme", "r"+string(rune('a'+i)), i)
			acmeReports = append(acmeReports, n.enqueue(j).JobID)
			n.advance(time.Millisecond)
		}
		for i := range 2 {
			j := job("acme", "e"+string(rune('a'+i)), 10+i)
			j.Kind = "email"
			acmeEmails = append(acmeEmails, n.enqueue(j).JobID)
			n.advance(time.Millisecond)
		}
		for i := range 2 {
			globex = append(globex, n.enqueue(job("globex", "g"+string(rune('a'+i)), 20+i)).JobID)
			n.advance(time.Millisecond)
		}

		if err := ops.PauseQueue(h.ctx, driver.PauseParams{Queue: driver.QueueKey{TenantID: "acme", Kind: "report"}, By: "tester", Now: n.now()}); err != nil {
			t.Fatal(err)
		}
		// Pausing twice keeps the first pause.
		if err := ops.PauseQueue(h.ctx, driver.PauseParams{Queue: driver.QueueKey{TenantID: "acme", Kind: "report"}, By: "someone else", Now: n.now().Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		paused, err := ops.PausedQueues(h.ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(paused) != 1 || paused[0].Kind != "report" || paused[0].PausedBy != "tester" || !paused[0].PausedAt.Equal(n.now()) {
			t.Fatalf("PausedQueues(acme) = %+v, want one pause of acme/report by tester at %v", paused, n.now())
		}
		if p, _ := ops.PausedQueues(h.ctx, "globex"); len(p) != 0 {
			t.Fatalf("PausedQueues(globex) = %+v, want none", p)
		}

		for _, shape := range shapes {
			// Limit 1 first: the paused jobs come first in every order and
			// must not take the batch's only slot.
			o := shape.opts
			o.Limit = 1
			ls := n.dequeue(o)
			if len(ls) != 1 || ls[0].Kind == "report" && ls[0].TenantID == "acme" {
				t.Fatalf("%s: Dequeue(limit 1) with acme/report paused = %+v, want one job of another queue", shape.name, ls)
			}
			n.release(ls)
		}
		got := ids(n.dequeue(queue.DequeueOptions{Limit: 100}))
		want := append(slices.Clone(acmeEmails), globex...)
		if !sameSet(got, want) {
			t.Fatalf("with acme/report paused, dequeued %v, want the acme emails and globex jobs %v", got, want)
		}
		n.none("acme", "acme/report paused, everything else leased")

		// Pausing the whole tenant holds back every kind, also through a
		// tenant-filtered dequeue; resuming the kind alone is not enough.
		if err := ops.PauseQueue(h.ctx, driver.PauseParams{Queue: driver.QueueKey{TenantID: "acme"}, By: "tester", Now: n.now()}); err != nil {
			t.Fatal(err)
		}
		if ok, err := ops.ResumeQueue(h.ctx, driver.QueueKey{TenantID: "acme", Kind: "report"}); err != nil || !ok {
			t.Fatalf("ResumeQueue(acme/report) = %v, %v; want true", ok, err)
		}
		n.none("acme", "acme's whole queue paused")
		if ok, err := ops.ResumeQueue(h.ctx, driver.QueueKey{TenantID: "acme", Kind: "report"}); err != nil || ok {
			t.Fatalf("ResumeQueue(acme/report) again = %v, %v; want false (not paused)", ok, err)
		}
		if ok, err := ops.ResumeQueue(h.ctx, driver.QueueKey{TenantID: "acme"}); err != nil || !ok {
			t.Fatalf("ResumeQueue(acme) = %v, %v; want true", ok, err)
		}
		ls := n.dequeue(queue.DequeueOptions{TenantID: "acme", Limit: 100})
		if got := ids(ls); !sameSet(got, acmeReports) {
			t.Fatalf("after resuming, dequeued %v, want the acme reports %v", got, acmeReports)
		}
		if o.EnableHlcOrdering {
			for i := 1; i < len(ls); i++ {
				if ls[i-1].THLC >= ls[i].THLC {
					t.Fatalf("after resuming, jobs not in HLC order: %v", ls)
				}
			}
		}

		// Bad keys are refused before anything is written.
		for _, k := range []driver.QueueKey{{TenantID: ""}, {TenantID: "acme", Kind: "has space"}} {
			if err := ops.PauseQueue(h.ctx, driver.PauseParams{Queue: k, By: "tester", Now: n.now()}); !errors.Is(err, queue.ErrInvalidJob) {
				t.Errorf("PauseQueue(%+v) = %v, want ErrInvalidJob", k, err)
			}
		}
	})
}

// release gives leased jobs back (retry at once) so a later dequeue can
// take them again.
func (n *node) release(ls []queue.Lease) {
	n.h.t.Helper()
	for _, l := range ls {
		if err := n.q.Snooze(n.h.ctx, l, 0); err != nil {
			n.h.t.Fatalf("Snooze(%s): %v", l.JobID, err)
		}
	}
}

// testRetryJob: a failed or cancelled job goes back to pending on every
// side that holds it, with its attempts reset, and runs again; other
// statuses are refused, chain_violation included even though its legacy
// row says failed.
func testRetryJob(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ops := n.ops()
		failed := n.enqueue(queue.Job{TenantID: "acme", Kind: "report", Payload: []byte(`{"n":1}`), MaxAttempts: 1}).JobID
		n.advance(time.Millisecond) // legacy order is by created_at
		cancelled := n.enqueue(job("acme", "", 2)).JobID
		n.advance(time.Millisecond)
		pending := n.enqueue(job("acme", "", 3)).JobID

		l := n.one("acme", queue.DequeueOptions{})
		if l.JobID != failed {
			t.Fatalf("first lease %s, want %s", l.JobID, failed)
		}
		if _, err := n.q.Fail(h.ctx, l, errors.New("disk full"), queue.FailOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := n.q.Cancel(h.ctx, cancelled, "operator"); err != nil {
			t.Fatal(err)
		}
		if err := n.q.Retry(h.ctx, pending); !errors.Is(err, queue.ErrNotRetryable) {
			t.Fatalf("Retry(pending job) = %v, want ErrNotRetryable", err)
		}
		if err := n.q.Retry(h.ctx, uuid.New()); !errors.Is(err, queue.ErrJobNotFound) {
			t.Fatalf("Retry(unknown job) = %v, want ErrJobNotFound", err)
		}
		n.advance(time.Second)
		for _, id := range []uuid.UUID{failed, cancelled} {
			if err := ops.RetryJob(h.ctx, id, n.now()); err != nil {
				t.Fatalf("RetryJob(%s): %v", id, err)
			}
			info, err := n.q.Get(h.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if info.Status != queue.StatusPending || info.Attempts != 0 || !info.RunAt.Equal(n.now()) {
				t.Fatalf("after RetryJob: status %s attempts %d run_at %v, want pending, 0, %v", info.Status, info.Attempts, info.RunAt, n.now())
			}
			legacy, hlcSide := h.sides(id)
			for side, st := range map[string]string{"legacy": legacy, "hlc": hlcSide} {
				if st != "" && st != "pending" {
					t.Fatalf("after RetryJob, the %s side says %s, want pending", side, st)
				}
			}
		}
		if info, err := n.q.Get(h.ctx, failed); err != nil || info.LastError == "" {
			t.Errorf("after RetryJob: last error %q, %v; want it kept until the next attempt", info.LastError, err)
		}
		got := ids(n.dequeue(queue.DequeueOptions{TenantID: "acme", Limit: 10}))
		if !sameSet(got, []uuid.UUID{failed, cancelled, pending}) {
			t.Fatalf("after the retries, dequeued %v, want all three jobs", got)
		}

		if o.EnableHlcOrdering {
			// A chain_violation job stays withheld.
			v := n.enqueue(job("acme", "v", 4)).JobID
			h.exec("UPDATE {job_state} SET status = 'chain_violation' WHERE job_id = ?", v.String())
			h.exec("UPDATE {jobs} SET status = 'failed' WHERE id = ?", v.String())
			if err := ops.RetryJob(h.ctx, v, n.now()); !errors.Is(err, queue.ErrNotRetryable) {
				t.Fatalf("RetryJob(chain_violation job) = %v, want ErrNotRetryable", err)
			}
		}
	})
}

// testOperatorRecords: the overview's activity numbers, verification
// results, node reports and the action record read back what was written.
func testOperatorRecords(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, queue.Options{EnableHlcOrdering: true, DualWriteMode: true})
		ops := n.ops()
		old := n.enqueue(job("acme", "", 1)).JobID
		n.advance(10 * time.Minute)
		since := n.now()
		n.enqueue(job("acme", "", 2))
		n.enqueue(job("globex", "", 3))
		l := n.one("acme", queue.DequeueOptions{})
		if l.JobID != old {
			t.Fatalf("leased %s, want the oldest job %s", l.JobID, old)
		}
		if err := n.q.Complete(h.ctx, l); err != nil {
			t.Fatal(err)
		}
		acts, err := ops.TenantActivity(h.ctx, "", since)
		if err != nil {
			t.Fatal(err)
		}
		if len(acts) != 2 || acts[0].TenantID != "acme" || acts[1].TenantID != "globex" {
			t.Fatalf("TenantActivity: %+v, want acme and globex", acts)
		}
		if a := acts[0]; a.Enqueued != 1 || a.Completed != 1 || a.OldestPending == uuid.Nil || !a.OldestPendingAt.Equal(since) {
			t.Fatalf("acme activity %+v: want 1 enqueued and 1 completed since %v, oldest pending enqueued then", a, since)
		}
		// A rate's window covers only the time since the first enqueue.
		if a, g := acts[0], acts[1]; !a.FirstEnqueuedAt.Equal(time.UnixMilli(base)) || !g.FirstEnqueuedAt.Equal(since) {
			t.Fatalf("first enqueues: acme %v, globex %v; want %v and %v", a.FirstEnqueuedAt, g.FirstEnqueuedAt, time.UnixMilli(base), since)
		}
		if one, err := ops.TenantActivity(h.ctx, "globex", since); err != nil || len(one) != 1 || one[0].Enqueued != 1 {
			t.Fatalf("TenantActivity(globex) = %+v, %v", one, err)
		}

		v := driver.VerificationRecord{TenantID: "acme", VerifiedAt: n.now(), Valid: false, EntriesChecked: 2, IssueCount: 1,
			Issues: []byte(`[{"type":"link_mismatch"}]`), Source: "test"}
		if err := ops.SaveVerification(h.ctx, v); err != nil {
			t.Fatal(err)
		}
		v.Valid, v.IssueCount, v.Issues = true, 0, nil
		if err := ops.SaveVerification(h.ctx, v); err != nil {
			t.Fatal(err)
		}
		vs, err := ops.Verifications(h.ctx, "")
		if err != nil || len(vs) != 1 || !vs[0].Valid || vs[0].IssueCount != 0 || string(vs[0].Issues) != "[]" || !vs[0].VerifiedAt.Equal(n.now()) {
			t.Fatalf("Verifications = %+v, %v; want acme's latest (valid)", vs, err)
		}

		rep := driver.NodeReport{NodeID: "node-a", StartedAt: since, Now: n.now(), LastHLC: n.clock.Current().String(), Mode: "hlc-reads", ClockRefusals: 2}
		if err := ops.ReportNode(h.ctx, rep); err != nil {
			t.Fatal(err)
		}
		// node-b never reported (a CLI, say) but persisted its clock bound.
		var updated any = n.now().UnixMilli()
		if h.tg.Name == "postgres" {
			updated = n.now()
		}
		h.exec("DELETE FROM {hlc_state} WHERE node_id = ?", "node-a")
		h.exec("INSERT INTO {hlc_state} (node_id, upper_bound_ms, updated_at) VALUES (?, ?, ?)", "node-b", base+5000, updated)
		nodes, err := ops.Nodes(h.ctx)
		if err != nil || len(nodes) != 2 {
			t.Fatalf("Nodes = %+v, %v; want node-a and node-b", nodes, err)
		}
		if got := nodes[0]; got.NodeID != "node-a" || !got.Reported || got.LastHLC != rep.LastHLC || got.ClockRefusals != 2 ||
			!got.Now.Equal(rep.Now) || !got.StartedAt.Equal(since) || got.HasUpperBound {
			t.Fatalf("nodes[0] = %+v, want node-a's report and no persisted bound", got)
		}
		if got := nodes[1]; got.NodeID != "node-b" || got.Reported || !got.HasUpperBound || got.UpperBoundMS != base+5000 {
			t.Fatalf("nodes[1] = %+v, want node-b with its bound and no report", got)
		}

		for _, a := range []driver.OperatorAction{
			{TenantID: "acme", JobID: old, Action: "retry", Actor: "ops", At: n.now()},
			{TenantID: "acme", Kind: "report", Action: "pause", Actor: "ops", At: n.now()},
			{TenantID: "globex", Action: "pause", Actor: "ops", At: n.now()},
		} {
			if err := ops.RecordAction(h.ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		all, err := ops.Actions(h.ctx, driver.ActionFilter{TenantID: "acme"})
		if err != nil || len(all) != 2 || all[0].Action != "pause" || all[1].JobID != old {
			t.Fatalf("Actions(acme) = %+v, %v; want the pause, then the retry", all, err)
		}
		mine, err := ops.Actions(h.ctx, driver.ActionFilter{TenantID: "acme", JobID: old})
		if err != nil || len(mine) != 1 || mine[0].Action != "retry" || !mine[0].At.Equal(n.now()) {
			t.Fatalf("Actions(acme, job) = %+v, %v; want the retry", mine, err)
		}
	})
}

// testRetention: PruneFinished deletes the state of jobs that finished
// before their status's cutoff, on every side that holds them, and nothing
// else: not younger ones, not a status whose cutoff is zero, not live
// jobs, not a job retried since. The log keeps every entry, so the chains
// still verify, a pruned job still reads (as pruned, in its own tenant
// only), and enqueueing it again is deduplicated instead of repeating its
// id in the chain. In legacy mode nothing else remembers a pruned job.
func testRetention(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ctx := h.ctx
		// finish leases the job next in line and ends it as end says.
		finish := func(j queue.Job, end string) uuid.UUID {
			t.Helper()
			id := n.enqueue(j).JobID
			n.advance(time.Millisecond)
			l := n.one(j.TenantID, queue.DequeueOptions{})
			if l.JobID != id {
				t.Fatalf("leased %s, want %s", l.JobID, id)
			}
			switch end {
			case "succeed":
				n.complete(l)
			case "fail":
				if _, err := n.q.Fail(ctx, l, errors.New("boom"), queue.FailOptions{NoRetry: true}); err != nil {
					t.Fatal(err)
				}
			case "cancel":
				if err := n.q.Cancel(ctx, id, "not needed"); err != nil {
					t.Fatal(err)
				}
			}
			return id
		}
		oldSucceeded := finish(job("acme", "", 1), "succeed")
		oldCancelled := finish(job("acme", "", 2), "cancel")
		oldFailed := finish(job("acme", "", 3), "fail")
		retried := finish(job("acme", "", 4), "fail")
		n.advance(2 * time.Hour)
		youngSucceeded := finish(job("acme", "", 5), "succeed")
		pending := n.enqueue(job("acme", "", 6)).JobID
		if err := n.q.Retry(ctx, retried); err != nil {
			t.Fatal(err)
		}
		n.advance(time.Minute)
		logBefore := h.rows().Log

		hour := n.now().Add(-time.Hour)
		got, err := n.b.PruneFinished(ctx, driver.PruneParams{SucceededBefore: hour, CancelledBefore: hour, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var want driver.PruneResult // the old succeeded and cancelled jobs, on each side they have
		if o.EnableHlcOrdering || o.DualWriteMode {
			want.HLC = 2
		}
		if !o.EnableHlcOrdering || o.DualWriteMode {
			want.Legacy = 2
		}
		if got != want {
			t.Fatalf("PruneFinished = %+v; want %+v", got, want)
		}
		for _, id := range []uuid.UUID{oldSucceeded, oldCancelled} {
			if legacy, hlcSide := h.sides(id); legacy != "" || hlcSide != "" {
				t.Errorf("job %s after pruning: legacy %q, hlc %q; want no state left", id, legacy, hlcSide)
			}
		}
		n.expectStatus(oldFailed, queue.StatusFailed)         // failed: zero cutoff, kept
		n.expectStatus(youngSucceeded, queue.StatusSucceeded) // finished after the cutoff
		n.expectStatus(pending, queue.StatusPending)
		n.expectStatus(retried, queue.StatusPending) // finished once, live again
		if rows := h.rows(); rows.Log != logBefore {
			t.Errorf("the log went from %d to %d entries; retention must keep every entry", logBefore, rows.Log)
		}
		h.verifyChains()

		// A pruned job reads from its log entry, in its tenant only.
		info, err := n.q.GetInTenant(ctx, "acme", oldSucceeded)
		hasLog := o.EnableHlcOrdering || o.DualWriteMode
		switch {
		case !hasLog:
			if !errors.Is(err, queue.ErrJobNotFound) {
				t.Errorf("legacy mode, Get(pruned job) = %+v, %v; want ErrJobNotFound (nothing is left of it)", info, err)
			}
		case err != nil:
			t.Fatalf("Get(pruned job): %v", err)
		default:
			if !info.Pruned || info.Status != driver.StatusPruned || info.Kind != "report" || string(info.Payload) != `{"n":1}` ||
				info.Chain == nil || info.InHLC || info.InLegacy {
				t.Errorf("Get(pruned job) = %+v; want status pruned, its kind and payload and chain entry from the log", info)
			}
			if _, err := n.q.GetInTenant(ctx, "globex", oldSucceeded); !errors.Is(err, queue.ErrJobNotFound) {
				t.Errorf("another tenant reads a pruned job: %v; want ErrJobNotFound", err)
			}
		}
		// Acting on it says what it is, a finished job, not an unknown one
		// (with no log, legacy mode cannot tell).
		wantCancel, wantRetry := queue.ErrJobFinished, queue.ErrNotRetryable
		if !hasLog {
			wantCancel, wantRetry = queue.ErrJobNotFound, queue.ErrJobNotFound
		}
		if err := n.q.Cancel(ctx, oldCancelled, "again"); !errors.Is(err, wantCancel) {
			t.Errorf("Cancel(pruned job) = %v; want %v", err, wantCancel)
		}
		if err := n.q.Retry(ctx, oldCancelled); !errors.Is(err, wantRetry) {
			t.Errorf("Retry(pruned job) = %v; want %v", err, wantRetry)
		}

		// Enqueued again: the log still knows the id.
		again := n.enqueue(job("acme", "", 1))
		if again.JobID != oldSucceeded || again.Deduplicated != hasLog {
			t.Errorf("enqueue of a pruned job again: %+v; want job %s, deduplicated %v", again, oldSucceeded, hasLog)
		}
		h.verifyChains()

		// Limit bounds each side; a zero cutoff everywhere prunes nothing.
		if r, err := n.b.PruneFinished(ctx, driver.PruneParams{Limit: 100}); err != nil || r != (driver.PruneResult{}) {
			t.Errorf("PruneFinished with no cutoff = %+v, %v; want nothing", r, err)
		}
		now := n.now().Add(time.Millisecond)
		r, err := n.b.PruneFinished(ctx, driver.PruneParams{SucceededBefore: now, FailedBefore: now, Limit: 1})
		if err != nil || r.HLC > 1 || r.Legacy > 1 || r.HLC+r.Legacy == 0 {
			t.Errorf("PruneFinished with Limit 1 = %+v, %v; want at most one row per side", r, err)
		}

		// The queue's Prune: by durations, in batches until nothing is due.
		n.advance(time.Hour)
		total, err := n.q.Prune(ctx, queue.Retention{Succeeded: time.Minute, Failed: time.Minute, Cancelled: -1})
		if err != nil {
			t.Fatal(err)
		}
		if total.HLC+total.Legacy == 0 {
			t.Errorf("Prune after the retention passed: %+v; want the remaining finished jobs pruned", total)
		}
		for _, id := range []uuid.UUID{oldFailed, youngSucceeded} {
			if legacy, hlcSide := h.sides(id); legacy != "" || hlcSide != "" {
				t.Errorf("job %s after Prune: legacy %q, hlc %q; want no state left", id, legacy, hlcSide)
			}
		}
		n.expectStatus(pending, queue.StatusPending)
		h.verifyChains()
	})
}
