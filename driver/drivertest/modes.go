package drivertest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// testModes: every row of the guide's table writes the tables it says and
// dequeues in the order it says.
func testModes(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		m := o.Mode()
		n := h.newNode("node-a", base, o)
		if n.q.Mode() != m {
			t.Fatalf("Mode() = %v, want %v", n.q.Mode(), m)
		}
		// Enqueued in this order, one second apart, on two chains:
		// A (priority 1, p1), B (5, p2), C (5, p1), D (1, p2).
		specs := []struct {
			name      string
			priority  int
			partition string
		}{{"A", 1, "p1"}, {"B", 5, "p2"}, {"C", 5, "p1"}, {"D", 1, "p2"}}
		byID := map[uuid.UUID]string{}
		res := map[string]queue.EnqueueResult{}
		for i, s := range specs {
			j := job("acme", s.partition, i)
			j.Priority = s.priority
			r := n.enqueue(j)
			if r.Deduplicated {
				t.Fatalf("job %s: Deduplicated on first enqueue", s.name)
			}
			if m.WritesHlc() != (r.THLC != "") || m.WritesHlc() == r.Link.IsZero() {
				t.Errorf("job %s: result t_hlc %q link %v; mode %v writes the chain: %v", s.name, r.THLC, r.Link, m, m.WritesHlc())
			}
			byID[r.JobID], res[s.name] = s.name, r
			n.advance(time.Second)
		}

		want := rows{}
		if m.WritesLegacy() {
			want.Jobs = 4
		}
		if m.WritesHlc() {
			want.Log, want.State, want.Heads = 4, 4, 2
		}
		if got := h.rows(); got != want {
			t.Errorf("after 4 enqueues in mode %v: %v, want %v", m, got, want)
		}
		for name, r := range res {
			info := n.expectStatus(r.JobID, queue.StatusPending)
			if info.InLegacy != m.WritesLegacy() || info.InHLC != m.WritesHlc() {
				t.Errorf("job %s: InLegacy=%v InHLC=%v in mode %v", name, info.InLegacy, info.InHLC, m)
			}
		}
		if m.WritesHlc() {
			h.verifyChains()
		}

		order := "BCAD" // priority DESC, then created_at
		if m.ReadsHlc() {
			order = "ABCD" // t_hlc, whatever the priority
		}
		var got string
		for range 4 {
			ls := n.dequeue(queue.DequeueOptions{Limit: 1})
			if len(ls) != 1 {
				t.Fatalf("dequeue after %q: got %d leases, want 1", got, len(ls))
			}
			l := ls[0]
			name := byID[l.JobID]
			got += name
			if l.THLC != res[name].THLC {
				t.Errorf("job %s: lease t_hlc %q, enqueued with %q", name, l.THLC, res[name].THLC)
			}
			if l.Priority != specs[strings.Index("ABCD", name)].priority || l.TenantID != "acme" || l.Kind != "report" {
				t.Errorf("job %s: lease %+v does not carry the job's tenant, kind and priority", name, l)
			}
			n.expectStatus(l.JobID, queue.StatusRunning)
			n.complete(l)
			n.expectStatus(l.JobID, queue.StatusSucceeded)
		}
		if got != order {
			t.Errorf("mode %v dequeued %s, want %s", m, got, order)
		}
		if ls := n.dequeue(queue.DequeueOptions{Limit: 10}); len(ls) != 0 {
			t.Errorf("dequeue after all completed: %d leases", len(ls))
		}

		// The same again in one batch: the leases come in the mode's order.
		byID = map[uuid.UUID]string{}
		for i, s := range specs {
			j := job("batch", s.partition, i)
			j.Priority = s.priority
			byID[n.enqueue(j).JobID] = s.name
			n.advance(time.Second)
		}
		got = ""
		ls := n.dequeue(queue.DequeueOptions{Limit: 10})
		for _, l := range ls {
			got += byID[l.JobID]
			if l.MaxAttempts != 25 {
				t.Errorf("lease of a job without MaxAttempts: MaxAttempts %d, want the default 25", l.MaxAttempts)
			}
		}
		if got != order {
			t.Errorf("mode %v: one Dequeue(Limit 10) returned the jobs as %s, want %s", m, got, order)
		}
	})
}

// ledger follows every job through a run with switches.
type ledger struct {
	t         *testing.T
	enqueued  map[uuid.UUID]bool
	completed map[uuid.UUID]int
	held      []queue.Lease // leased, not completed, oldest first
}

func (l *ledger) take(ls []queue.Lease) {
	l.t.Helper()
	for _, x := range ls {
		if !l.enqueued[x.JobID] {
			l.t.Errorf("dequeued job %s that was never enqueued", x.JobID)
		}
		if l.completed[x.JobID] > 0 {
			l.t.Errorf("dequeued job %s again after it was completed", x.JobID)
		}
		for _, h := range l.held {
			if h.JobID == x.JobID {
				l.t.Errorf("job %s handed out twice while its first lease (expiring %v) is valid", x.JobID, h.ExpiresAt)
			}
		}
		l.held = append(l.held, x)
	}
}

func (l *ledger) complete(n *node, k int) {
	l.t.Helper()
	for ; k > 0 && len(l.held) > 0; k-- {
		x := l.held[0]
		l.held = l.held[1:]
		if err := n.q.Complete(n.h.ctx, x); err != nil {
			l.t.Errorf("completing job %s (leased before the switch to %v): %v", x.JobID, n.q.Mode(), err)
			continue
		}
		l.completed[x.JobID]++
	}
}

// testSwitches: with jobs pending and leased, every switch between modes
// loses nothing and runs nothing twice.
func testSwitches(t *testing.T, newTarget func(t *testing.T) Target) {
	legacy, dual, reads, only := modes[0], modes[1], modes[2], modes[3]
	for _, seq := range [][]queue.Options{
		{legacy, dual, reads, only, legacy}, // the guide's phases, then its rollback
		{only, reads, dual, legacy},         // the phases backwards
		{legacy, only},                      // straight to HLC only
		{only, legacy},                      // straight back
	} {
		var names []string
		for _, o := range seq {
			names = append(names, o.Mode().String())
		}
		t.Run(strings.Join(names, ">"), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, newTarget)
			n := h.newNode("node-a", base, seq[0])
			led := &ledger{t: t, enqueued: map[uuid.UUID]bool{}, completed: map[uuid.UUID]int{}}
			next := 0
			lease := queue.DequeueOptions{Limit: 2, LeaseFor: time.Hour}
			for phase, o := range seq {
				if phase > 0 {
					if err := n.q.SetOptions(h.ctx, o); err != nil {
						t.Fatalf("SetOptions(%v): %v", o.Mode(), err)
					}
					if n.q.Mode() != o.Mode() {
						t.Fatalf("Mode() = %v after SetOptions(%v)", n.q.Mode(), o.Mode())
					}
					// A job leased before the switch completes after it.
					led.complete(n, 1)
				}
				for i := range 5 {
					j := job(fmt.Sprint("t", next%2), fmt.Sprint("p", next%3), next)
					if i == 0 {
						j.RunAt = n.now().Add(3 * time.Second) // one scheduled job per phase
					}
					next++
					r := n.enqueue(j)
					led.enqueued[r.JobID] = true
					n.advance(100 * time.Millisecond)
				}
				got := n.dequeue(lease)
				if len(got) != 2 {
					t.Fatalf("phase %v: dequeued %d jobs, want 2", o.Mode(), len(got))
				}
				led.take(got)
			}
			led.complete(n, len(led.held))
			n.advance(time.Minute) // every scheduled job is due
			for range 100 {
				got := n.dequeue(queue.DequeueOptions{Limit: 4, LeaseFor: time.Hour})
				if len(got) == 0 {
					break
				}
				led.take(got)
				led.complete(n, len(led.held))
			}
			if len(led.completed) != len(led.enqueued) {
				var missing []uuid.UUID
				for id := range led.enqueued {
					if led.completed[id] == 0 {
						missing = append(missing, id)
					}
				}
				t.Errorf("completed %d of %d jobs; never handed out again: %v", len(led.completed), len(led.enqueued), missing)
				for _, id := range missing {
					info := n.get(id)
					legacy, hlcSide := h.sides(id)
					t.Logf("  %s: Get status %q run_at %v; legacy %q, job_state %q", id, info.Status, info.RunAt, legacy, hlcSide)
				}
			}
			for id, c := range led.completed {
				if c != 1 {
					t.Errorf("job %s completed %d times", id, c)
				}
				n.expectStatus(id, queue.StatusSucceeded)
			}
			if l, s := h.unfinished(); l != 0 || s != 0 {
				t.Errorf("left unfinished: %d in the legacy table, %d in job_state", l, s)
			}
			if h.count("SELECT count(*) FROM {scheduler_log}") > 0 {
				h.verifyChains()
			}
		})
	}
}

// testOptions: MaxClockDriftMs is validated by New and SetOptions, and 0
// means the guide's default.
func testOptions(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		b := h.tg.Open(t)
		newClock := func() *hlc.Clock {
			c, err := hlc.New(h.ctx, hlc.Config{Node: "node-a", Wall: hlc.NewManualClock(base)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		isBad := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Errorf("%s: accepted", what)
				return
			}
			if !errors.Is(err, queue.ErrInvalidOptions) || !strings.Contains(err.Error(), "MaxClockDriftMs") {
				t.Errorf("%s: error %q does not wrap ErrInvalidOptions and name MaxClockDriftMs", what, err)
			}
		}
		for _, bad := range []int{-1, -60000, queue.MaxClockDriftMsLimit + 1, math.MaxInt32} {
			_, err := queue.New(h.ctx, queue.Config{Backend: b, Clock: newClock(), Options: queue.Options{MaxClockDriftMs: bad}})
			isBad(fmt.Sprintf("New with MaxClockDriftMs %d", bad), err)
		}
		for _, good := range []int{1, 60000, queue.MaxClockDriftMsLimit} {
			q, err := queue.New(h.ctx, queue.Config{Backend: b, Clock: newClock(), Options: queue.Options{MaxClockDriftMs: good}})
			if err != nil {
				t.Errorf("New with MaxClockDriftMs %d: %v", good, err)
				continue
			}
			if q.Options().MaxClockDriftMs != good || q.Clock().MaxDrift() != time.Duration(good)*time.Millisecond {
				t.Errorf("MaxClockDriftMs %d: options %d, clock drift %v", good, q.Options().MaxClockDriftMs, q.Clock().MaxDrift())
			}
		}

		n := h.newNode("node-a", base, queue.Options{})
		if got := n.q.Options().MaxClockDriftMs; got != 60000 {
			t.Errorf("default MaxClockDriftMs = %d, want 60000", got)
		}
		if got := n.clock.MaxDrift(); got != time.Minute {
			t.Errorf("default clock drift = %v, want 1m", got)
		}
		for _, bad := range []int{-1, queue.MaxClockDriftMsLimit + 1} {
			err := n.q.SetOptions(h.ctx, queue.Options{EnableHlcOrdering: true, MaxClockDriftMs: bad})
			isBad(fmt.Sprintf("SetOptions with MaxClockDriftMs %d", bad), err)
			if o := n.q.Options(); o.EnableHlcOrdering || o.MaxClockDriftMs != 60000 || n.clock.MaxDrift() != time.Minute {
				t.Errorf("refused SetOptions changed the options to %+v (clock drift %v)", o, n.clock.MaxDrift())
			}
		}
		if err := n.q.SetOptions(h.ctx, queue.Options{DualWriteMode: true, MaxClockDriftMs: 5000}); err != nil {
			t.Fatal(err)
		}
		if n.q.Options().MaxClockDriftMs != 5000 || n.clock.MaxDrift() != 5*time.Second || n.q.Mode() != queue.ModeDualWrite {
			t.Errorf("after SetOptions(5000): options %+v, clock drift %v", n.q.Options(), n.clock.MaxDrift())
		}
		if err := n.q.SetOptions(h.ctx, queue.Options{DualWriteMode: true}); err != nil {
			t.Fatal(err)
		}
		if n.q.Options().MaxClockDriftMs != 60000 || n.clock.MaxDrift() != time.Minute {
			t.Errorf("after SetOptions(0): options %+v, clock drift %v; want the default 60000", n.q.Options(), n.clock.MaxDrift())
		}
	})
}
