package drivertest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// minute is the start of the m-th minute after base.
func minute(m int) time.Time { return time.UnixMilli(base).Add(time.Duration(m) * time.Minute).UTC() }

// at moves the node's clock to minute m, second s after base.
func (n *node) at(m, s int) {
	n.wall.Set(base + (time.Duration(m)*time.Minute + time.Duration(s)*time.Second).Milliseconds())
}

// activityString renders minutes as the failure messages compare them.
func activityString(ms []driver.ActivityMinute) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  +%dm: enqueued %d started %d succeeded %d failed %d wait sum %dms max %dms",
			int(m.Minute.Sub(minute(0))/time.Minute), m.Enqueued, m.Started, m.Succeeded, m.Failed, m.WaitSumMS, m.WaitMaxMS)
	}
	if b.Len() == 0 {
		return " (none)"
	}
	return b.String()
}

// testActivity: in every mode, ActivityMinutes puts each enqueue, each
// job's first start (with how long it had been due) and each final
// success or failure in the minute it happened, for one tenant or summed
// over all; a retry's second lease is not a start, and a job scheduled
// for later waited from its run_at, not from its enqueue. RollupActivity
// records the settled minutes once (a concurrent second rollup finds
// nothing to do), the answer does not change, retention pruning the jobs
// afterwards changes nothing either, minutes after the rollup are still
// read from the jobs, and recorded minutes older than Keep go.
func testActivity(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ctx := h.ctx
		lease := func(tenant string, want ...uuid.UUID) []queue.Lease {
			t.Helper()
			ls := n.dequeue(queue.DequeueOptions{TenantID: tenant, Limit: 10})
			if got := ids(ls); !sameSet(got, want) {
				t.Fatalf("at %v, dequeue(%s) leased %v, want %v", n.now().UTC(), tenant, got, want)
			}
			return ls
		}
		// Minute 0: two acme jobs and one globex job.
		a1 := n.enqueue(job("acme", "", 1)).JobID
		a2 := n.enqueue(job("acme", "", 2)).JobID
		n.at(0, 30)
		g1 := n.enqueue(job("globex", "", 1)).JobID
		// Minute 1: both acme jobs start 70 s after they were due; one
		// succeeds, one fails for good. A job for minute 5 is enqueued.
		n.at(1, 10)
		for _, l := range lease("acme", a1, a2) {
			if l.JobID == a1 {
				n.complete(l)
			} else if _, err := n.q.Fail(ctx, l, errors.New("boom"), queue.FailOptions{NoRetry: true}); err != nil {
				t.Fatal(err)
			}
		}
		n.at(1, 20)
		later := job("acme", "", 3)
		later.RunAt = minute(5)
		a3 := n.enqueue(later).JobID
		// Minute 2: another acme job; globex's job starts (130 s) and
		// fails with a retry.
		n.at(2, 40)
		a4 := n.enqueue(job("acme", "", 4)).JobID
		gl := lease("globex", g1)[0]
		if res, err := n.q.Fail(ctx, gl, errors.New("try again"), queue.FailOptions{Delay: 10 * time.Second}); err != nil || !res.Retried {
			t.Fatalf("Fail with a retry: %+v, %v", res, err)
		}
		// Minute 3: its second lease is not a start; it succeeds.
		n.at(3, 5)
		n.complete(lease("globex", g1)[0])
		// Minute 6: a3 (due at minute 5: 90 s) and a4 (due at 2:40:
		// 230 s) start and succeed.
		n.at(6, 30)
		for _, l := range lease("acme", a3, a4) {
			n.complete(l)
		}

		acme := []driver.ActivityMinute{
			{Minute: minute(0), Enqueued: 2},
			{Minute: minute(1), Enqueued: 1, Started: 2, Succeeded: 1, Failed: 1, WaitSumMS: 140_000, WaitMaxMS: 70_000},
			{Minute: minute(2), Enqueued: 1},
			{Minute: minute(6), Started: 2, Succeeded: 2, WaitSumMS: 320_000, WaitMaxMS: 230_000},
		}
		globex := []driver.ActivityMinute{
			{Minute: minute(0), Enqueued: 1},
			{Minute: minute(2), Started: 1, WaitSumMS: 130_000, WaitMaxMS: 130_000},
			{Minute: minute(3), Succeeded: 1},
		}
		all := driver.MergeActivity(acme, globex)
		check := func(when, tenant string, from, to time.Time, want []driver.ActivityMinute) {
			t.Helper()
			got, err := n.b.ActivityMinutes(ctx, driver.ActivityParams{TenantID: tenant, From: from, To: to})
			if err != nil {
				t.Fatalf("%s: ActivityMinutes(%q): %v", when, tenant, err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: ActivityMinutes(%q, +%v..+%v):%s\nwant:%s", when, tenant, from.Sub(minute(0)), to.Sub(minute(0)),
					activityString(got), activityString(want))
			}
		}
		checkAll := func(when string) {
			t.Helper()
			check(when, "acme", minute(0), minute(10), acme)
			check(when, "globex", minute(0), minute(10), globex)
			check(when, "", minute(0), minute(10), all)
			// The bounds are whole minutes, the end excluded; a time within
			// a minute counts as its minute.
			check(when, "acme", minute(1).Add(30*time.Second), minute(2).Add(59*time.Second), acme[1:2])
			check(when, "nobody", minute(0), minute(10), []driver.ActivityMinute{})
		}
		checkAll("before any rollup")

		// The rollup at +10m records minutes 0..7 (8 and 9 have not
		// settled), once.
		n.at(10, 0)
		rp := driver.RollupParams{Now: n.now(), Backfill: 10 * time.Minute}
		other := h.tg.Open(t) // a second node's handle, rolling up at the same moment
		var wg sync.WaitGroup
		results := make([]driver.RollupResult, 2)
		errs := make([]error, 2)
		for i, b := range []driver.Driver{n.b, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = b.RollupActivity(ctx, rp)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("concurrent rollups: %v", err)
		}
		slices.SortFunc(results, func(a, b driver.RollupResult) int { return b.Rows - a.Rows })
		if r := results[0]; !r.From.Equal(minute(0)) || !r.Until.Equal(minute(8)) || r.Rows != 7 {
			t.Fatalf("rollup at +10m: %+v; want minutes +0..+8 recorded, 7 tenant-minutes", r)
		}
		if r := results[1]; r.Rows != 0 || !r.From.Equal(r.Until) || !r.Until.Equal(minute(8)) {
			t.Fatalf("the concurrent second rollup: %+v; want nothing recorded and the watermark at +8m", r)
		}
		checkAll("after the rollup")

		// Retention prunes every finished job: the recorded minutes stand.
		pruned, err := n.b.PruneFinished(ctx, driver.PruneParams{SucceededBefore: n.now(), FailedBefore: n.now(),
			CancelledBefore: n.now(), Limit: 100})
		if err != nil || pruned.HLC+pruned.Legacy == 0 {
			t.Fatalf("PruneFinished: %+v, %v; want the finished jobs pruned", pruned, err)
		}
		checkAll("after pruning")

		// Minutes after the watermark are read from the jobs, and the next
		// rollup records them.
		n.at(10, 5)
		a5 := n.enqueue(job("acme", "", 5)).JobID
		n.at(11, 0)
		lease("acme", a5)
		acme = append(acme, driver.ActivityMinute{Minute: minute(10), Enqueued: 1}, driver.ActivityMinute{Minute: minute(11), Started: 1, WaitSumMS: 55_000, WaitMaxMS: 55_000})
		check("after the watermark", "acme", minute(0), minute(12), acme)
		n.at(14, 0)
		if r, err := n.b.RollupActivity(ctx, driver.RollupParams{Now: n.now()}); err != nil || !r.From.Equal(minute(8)) || !r.Until.Equal(minute(12)) || r.Rows != 2 {
			t.Fatalf("rollup at +14m: %+v, %v; want +8..+12 recorded, 2 tenant-minutes", r, err)
		}
		check("after the second rollup", "acme", minute(0), minute(12), acme)

		// A week and a day later, the recorded minutes are gone.
		n.wall.Set(minute(0).Add(8 * 24 * time.Hour).UnixMilli())
		if _, err := n.b.RollupActivity(ctx, driver.RollupParams{Now: n.now()}); err != nil {
			t.Fatal(err)
		}
		check("after Keep", "acme", minute(0), minute(12), []driver.ActivityMinute{})
	})
}

// testKindCounts: KindCounts counts a tenant's jobs per kind, each once
// in every mode: pending, scheduled and running now, succeeded and failed
// since the window's start; not cancelled ones, not older finished ones,
// not another tenant's.
func testKindCounts(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ctx := h.ctx
		kinded := func(kind string, i int) queue.Job {
			j := job("acme", "", i)
			j.Kind = kind
			return j
		}
		// An email that succeeded before the window.
		n.enqueue(kinded("email", 0))
		n.complete(n.one("acme", queue.DequeueOptions{}))
		n.advance(time.Minute)
		since := n.now()
		for i := range 3 {
			n.enqueue(kinded("email", i+1))
		}
		for i := range 2 {
			n.enqueue(kinded("report", i+1))
		}
		n.enqueue(job("globex", "", 1))
		later := kinded("report", 3)
		later.RunAt = n.now().Add(time.Hour)
		n.enqueue(later)
		n.advance(time.Second)
		// email: one succeeds, one fails for good, one runs; report: one
		// is cancelled, one pending, one scheduled.
		ls := n.dequeue(queue.DequeueOptions{TenantID: "acme", Kinds: []string{"email"}, Limit: 3})
		if len(ls) != 3 {
			t.Fatalf("leased %d emails, want 3", len(ls))
		}
		n.complete(ls[0])
		if _, err := n.q.Fail(ctx, ls[1], errors.New("bounced"), queue.FailOptions{NoRetry: true}); err != nil {
			t.Fatal(err)
		}
		reports := n.dequeue(queue.DequeueOptions{TenantID: "acme", Kinds: []string{"report"}, Limit: 1})
		if len(reports) != 1 {
			t.Fatalf("leased %d reports, want 1", len(reports))
		}
		if err := n.q.Cancel(ctx, reports[0].JobID, "not needed"); err != nil {
			t.Fatal(err)
		}
		got, err := n.b.KindCounts(ctx, driver.KindCountParams{TenantID: "acme", Since: since})
		if err != nil {
			t.Fatal(err)
		}
		want := []driver.KindCount{
			{Kind: "email", Running: 1, Succeeded: 1, Failed: 1},
			{Kind: "report", Pending: 1, Scheduled: 1},
		}
		if !slices.Equal(got, want) {
			t.Fatalf("KindCounts(acme) = %+v, want %+v", got, want)
		}
		if got, err := n.b.KindCounts(ctx, driver.KindCountParams{TenantID: "nobody", Since: since}); err != nil || len(got) != 0 {
			t.Fatalf("KindCounts(nobody) = %+v, %v; want none", got, err)
		}
	})
}

// testLastPeriodic: LastPeriodic finds the latest occurrence of a periodic
// job that has a log entry, by the time in its key, in its tenant only,
// not another job's whose name starts with the same text, and the
// latest even when keys within one second do not sort in time order.
func testLastPeriodic(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		logged := o.Mode().WritesHlc() // only the log keeps idempotency keys
		occurrence := func(tenant, name string, at time.Time) uuid.UUID {
			t.Helper()
			j := queue.Job{TenantID: tenant, Kind: "tick", Payload: []byte(`{}`), IdempotencyKey: driver.PeriodicKey(name, at), RunAt: at}
			return n.enqueue(j).JobID
		}
		if _, ok, err := n.b.LastPeriodic(h.ctx, "acme", "hourly"); err != nil || ok {
			t.Fatalf("LastPeriodic before any occurrence: %v, %v; want none", ok, err)
		}
		occurrence("acme", "hourly", minute(0))
		last := occurrence("acme", "hourly", minute(60))
		occurrence("globex", "hourly", minute(120))                             // another tenant's
		occurrence("acme", "hourly@2", minute(180))                             // another name
		occurrence("acme", "hourly-x", minute(240))                             // another name
		occurrence("acme", "fast", minute(1))                                   // "…:01:00Z"
		fast := occurrence("acme", "fast", minute(1).Add(500*time.Millisecond)) // "…:01:00.5Z" sorts before it
		n.enqueue(queue.Job{TenantID: "acme", Kind: "tick", Payload: []byte(`{}`), IdempotencyKey: "hourly@" + minute(300).Format(time.RFC3339)})
		run, ok, err := n.b.LastPeriodic(h.ctx, "acme", "hourly")
		if !logged {
			if err != nil || ok {
				t.Fatalf("LastPeriodic in %s mode = %+v, %v, %v; want none (no log)", o.Mode(), run, ok, err)
			}
			return
		}
		if err != nil || !ok || run.JobID != last || !run.At.Equal(minute(60)) || run.THLC == "" {
			t.Fatalf("LastPeriodic(acme, hourly) = %+v, %v, %v; want job %s at +60m", run, ok, err, last)
		}
		if run, ok, err := n.b.LastPeriodic(h.ctx, "acme", "fast"); err != nil || !ok || run.JobID != fast {
			t.Fatalf("LastPeriodic(acme, fast) = %+v, %v, %v; want the occurrence half a second later, %s", run, ok, err, fast)
		}
	})
}
