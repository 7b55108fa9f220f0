package drivertest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

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
