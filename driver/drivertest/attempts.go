package drivertest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// attemptsWant is the history a job should have: attempt numbers, error
// texts, when each ended and who ran it, oldest first.
type attemptsWant struct {
	attempt int
	err     string
	at      time.Time
	worker  string
}

func expectAttempts(t *testing.T, what string, got []driver.AttemptError, want []attemptsWant) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d attempt errors %+v, want %d", what, len(got), got, len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Attempt != w.attempt || g.Error != w.err || !g.At.Equal(w.at) || g.Worker != w.worker {
			t.Errorf("%s: attempt error %d is {%d %q %v %q}, want {%d %q %v %q}", what, i,
				g.Attempt, g.Error, g.At, g.Worker, w.attempt, w.err, w.at, w.worker)
		}
	}
}

// storedAttempts reads a job's attempt_errors on one side ("jobs" or
// "job_state"), as the backend decodes them.
func (h *harness) storedAttempts(table, idCol string, id uuid.UUID) []driver.AttemptError {
	h.t.Helper()
	var raw *string
	q := fmt.Sprintf("SELECT CAST(attempt_errors AS TEXT) FROM {%s} WHERE %s = ?", table, idCol)
	if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(q), id.String()).Scan(&raw); err != nil {
		h.t.Fatalf("%s (job %s): %v", q, id, err)
	}
	if raw == nil {
		return nil
	}
	out, err := driver.DecodeAttemptErrors([]byte(*raw))
	if err != nil {
		h.t.Fatalf("job %s on %s: %v", id, table, err)
	}
	return out
}

// testAttemptHistory: every attempt that ends with an error adds one
// entry (when, which attempt, the error, the lease owner) to the job's
// history, in every mode and on every side that holds the job: a retried
// and a final failure, an expired lease, a handler's cancel; a success
// and a snooze add none; only the newest MaxAttemptErrors are kept; an
// entry's text is cut at MaxAttemptErrorChars characters while
// last_error keeps it whole.
func testAttemptHistory(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o, func(c *queue.Config) {
			c.Backoff = func(int) time.Duration { return time.Second }
		})

		// 25 failed attempts, a snooze between the first two: the last 20 stay.
		const attempts = driver.MaxAttemptErrors + 5
		j := job("hist", "", 1)
		j.MaxAttempts = attempts
		r := n.enqueue(j)
		var want []attemptsWant
		for a := 1; a <= attempts; a++ {
			owner := fmt.Sprintf("worker-%d", a%3)
			l := n.one("hist", queue.DequeueOptions{Owner: owner})
			if a == 2 && len(want) == 1 {
				if err := n.q.Snooze(h.ctx, l, 0); err != nil {
					t.Fatalf("Snooze: %v", err)
				}
				if got := n.get(r.JobID).AttemptErrors; len(got) != 1 {
					t.Errorf("a snooze changed the history: %+v", got)
				}
				l = n.one("hist", queue.DequeueOptions{Owner: owner})
			}
			n.advance(250 * time.Millisecond)
			msg := fmt.Sprintf("boom %d", a)
			if _, err := n.q.Fail(h.ctx, l, errors.New(msg), queue.FailOptions{}); err != nil {
				t.Fatalf("Fail attempt %d: %v", a, err)
			}
			want = append(want, attemptsWant{a, msg, n.now(), owner})
			if a == 1 {
				expectAttempts(t, "after one failure", n.get(r.JobID).AttemptErrors, want)
			}
			n.advance(time.Second)
		}
		info := n.expectStatus(r.JobID, queue.StatusFailed)
		expectAttempts(t, fmt.Sprintf("after %d failures", attempts), info.AttemptErrors, want[attempts-driver.MaxAttemptErrors:])

		// A failure then a success: the success adds nothing.
		ok := job("hist-ok", "", 1)
		ok.MaxAttempts = 3
		rok := n.enqueue(ok)
		l := n.one("hist-ok", queue.DequeueOptions{Owner: "w"})
		if _, err := n.q.Fail(h.ctx, l, errors.New("transient"), queue.FailOptions{Delay: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		failedAt := n.now()
		n.advance(time.Millisecond)
		n.complete(n.one("hist-ok", queue.DequeueOptions{Owner: "w"}))
		expectAttempts(t, "after a failure and a success", n.expectStatus(rok.JobID, queue.StatusSucceeded).AttemptErrors,
			[]attemptsWant{{1, "transient", failedAt, "w"}})

		// An expired lease, then a handler's cancel on the next attempt.
		ex := job("hist-exp", "", 1)
		ex.MaxAttempts = 3
		rex := n.enqueue(ex)
		n.one("hist-exp", queue.DequeueOptions{Owner: "lost-worker", LeaseFor: 5 * time.Second})
		n.advance(6 * time.Second)
		if res, _, err := n.q.RescueExpired(h.ctx); err != nil || res != 1 {
			t.Fatalf("RescueExpired: %d, %v", res, err)
		}
		expiredAt := n.now()
		l = n.one("hist-exp", queue.DequeueOptions{Owner: "w2"})
		if err := n.q.CancelLeased(h.ctx, l, "not wanted"); err != nil {
			t.Fatal(err)
		}
		expiredThenCancelled := []attemptsWant{
			{1, "lease expired (owner lost-worker)", expiredAt, "lost-worker"},
			{2, "not wanted", n.now(), "w2"},
		}
		expectAttempts(t, "after an expiry and a cancel", n.expectStatus(rex.JobID, queue.StatusCancelled).AttemptErrors, expiredThenCancelled)

		// A long error: the history keeps MaxAttemptErrorChars characters
		// (not bytes: é is two), last_error all of it.
		long := strings.Repeat("é", driver.MaxAttemptErrorChars+100)
		lj := job("hist-long", "", 1)
		lj.MaxAttempts = 1
		rl := n.enqueue(lj)
		if _, err := n.q.Fail(h.ctx, n.one("hist-long", queue.DequeueOptions{Owner: "w"}), errors.New(long), queue.FailOptions{}); err != nil {
			t.Fatal(err)
		}
		li := n.expectStatus(rl.JobID, queue.StatusFailed)
		if li.LastError != long {
			t.Errorf("last_error has %d characters, want all %d", len([]rune(li.LastError)), len([]rune(long)))
		}
		expectAttempts(t, "a long error", li.AttemptErrors, []attemptsWant{{1, long[:2*driver.MaxAttemptErrorChars], n.now(), "w"}})

		// Every side that holds the job holds the same history.
		for _, s := range []struct {
			table, col string
			holds      bool
		}{{"jobs", "id", o.Mode().WritesLegacy()}, {"job_state", "job_id", o.Mode().WritesHlc()}} {
			if s.holds {
				expectAttempts(t, s.table+" row after an expiry and a cancel", h.storedAttempts(s.table, s.col, rex.JobID), expiredThenCancelled)
			}
		}
	})
}

// testAttemptHistoryMigrates: the history moves with the job across the
// guide's switches: a backfill copies a legacy job's history to its HLC
// state, and the rollback drain copies an HLC-only job's history to its
// legacy row.
func testAttemptHistoryMigrates(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		failOnce := func(n *node, tenant string) (uuid.UUID, []attemptsWant) {
			j := job(tenant, "", 1)
			j.MaxAttempts = 3
			id := n.enqueue(j).JobID
			l := n.one(tenant, queue.DequeueOptions{Owner: "w-" + tenant})
			if _, err := n.q.Fail(h.ctx, l, errors.New("first try"), queue.FailOptions{Delay: time.Hour}); err != nil {
				t.Fatal(err)
			}
			return id, []attemptsWant{{1, "first try", n.now(), "w-" + tenant}}
		}

		legacy := h.newNode("node-a", base, modes[0])
		lid, lwant := failOnce(legacy, "old")
		dual := h.newNode("node-b", base+1000, modes[1])
		if k, err := dual.q.Backfill(h.ctx, "old"); err != nil || k != 1 {
			t.Fatalf("Backfill = %d, %v; want 1", k, err)
		}
		expectAttempts(t, "job_state after the backfill", h.storedAttempts("job_state", "job_id", lid), lwant)

		hlcOnly := h.newNode("node-c", base+2000, modes[3])
		hid, hwant := failOnce(hlcOnly, "new")
		if k, err := hlcOnly.q.RollbackDrain(h.ctx); err != nil || k != 1 {
			t.Fatalf("RollbackDrain = %d, %v; want 1", k, err)
		}
		expectAttempts(t, "legacy row after the drain", h.storedAttempts("jobs", "id", hid), hwant)
	})
}
