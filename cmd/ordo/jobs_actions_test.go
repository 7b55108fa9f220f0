package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
)

// Issue 16: ordo jobs cancel and retry act on a tenant's jobs as the HTTP
// API and the dashboard do, and say per job what they did.
func TestJobsCancelAndRetry(t *testing.T) {
	transcripts := map[string][]string{}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := testdb.SQLiteURL(t)
			if backend == "postgres" {
				url = testdb.NewDatabase(t)
			}
			s := &cliSession{t: t, db: url}
			ctx := context.Background()
			pending := s.enqueue("acme", "email.send", `{"n":1}`)
			toFail := s.enqueue("acme", "email.send", `{"n":2}`)
			running := s.enqueue("acme", "report.build", `{"n":3}`)
			other := s.enqueue("globex", "email.send", `{"n":4}`)
			q, db := worker(t, url)
			leases := dequeue(t, q, queue.DequeueOptions{Kinds: []string{"report.build"}})
			if !slices.Equal(jobIDs(leases...), jobIDs(running)) {
				t.Fatalf("dequeue of report.build: %v", jobIDs(leases...))
			}
			lease := leases[0]

			// A pending job and a running one, whoever holds it.
			out, errOut, code := s.run("jobs", "cancel", pending.String(), running.String(), "--tenant", "acme", "--reason", "customer withdrew", "--by", "alice")
			if code != 0 || errOut != "" {
				t.Fatalf("jobs cancel: exit %d %s%s", code, out, errOut)
			}
			if want := []string{"job " + pending.String() + " cancelled (was pending)", "job " + running.String() + " cancelled (was running)"}; !slices.Equal(lines(out), want) {
				t.Fatalf("jobs cancel printed\n%s\nwant\n%s", out, strings.Join(want, "\n"))
			}
			for _, id := range []uuid.UUID{pending, running} {
				if j := s.show("acme", id); j["status"] != "cancelled" || j["last_error"] != "customer withdrew" || j["in_legacy"] != true || j["in_hlc"] != true {
					t.Fatalf("jobs show after cancel: %v", j)
				}
			}
			// The worker that held the running job lost it.
			if err := q.Complete(ctx, lease); !errors.Is(err, queue.ErrLeaseLost) {
				t.Fatalf("completing the cancelled job's lease: %v, want ErrLeaseLost", err)
			}
			leases = dequeue(t, q, queue.DequeueOptions{TenantID: "acme"})
			if !slices.Equal(jobIDs(leases...), jobIDs(toFail)) {
				t.Fatalf("after the cancel acme hands out %v, want only %v", jobIDs(leases...), toFail)
			}
			if _, err := q.Fail(ctx, leases[0], errors.New("smtp down"), queue.FailOptions{NoRetry: true}); err != nil {
				t.Fatal(err)
			}

			// Refusals name the job and its state, and exit 2.
			_, errOut, code = s.run("jobs", "cancel", pending.String(), "--tenant", "acme")
			if code != 2 || !strings.Contains(errOut, "job "+pending.String()+" not cancelled: it is cancelled, and only a job that has not finished can be cancelled") {
				t.Fatalf("cancelling a cancelled job: exit %d %s", code, errOut)
			}
			_, errOut, code = s.run("jobs", "cancel", toFail.String(), "--tenant", "acme")
			if code != 2 || !strings.Contains(errOut, "job "+toFail.String()+" not cancelled: it is failed") {
				t.Fatalf("cancelling a failed job: exit %d %s", code, errOut)
			}
			// Another tenant's job is not found, and stays as it was.
			_, errOut, code = s.run("jobs", "cancel", other.String(), "--tenant", "acme")
			if code != 2 || !strings.Contains(errOut, "job "+other.String()+" not cancelled: not found in tenant acme") {
				t.Fatalf("cancelling another tenant's job: exit %d %s", code, errOut)
			}
			if j := s.show("globex", other); j["status"] != "pending" {
				t.Fatalf("globex's job after acme's cancel: %v", j)
			}
			// A bad id anywhere in the list: nothing is done.
			_, errOut, code = s.run("jobs", "cancel", other.String(), "not-a-uuid", "--tenant", "globex")
			if code != 2 || !strings.Contains(errOut, `job id "not-a-uuid": want a UUID; no job was cancelled`) {
				t.Fatalf("jobs cancel with a bad id: exit %d %s", code, errOut)
			}
			if j := s.show("globex", other); j["status"] != "pending" {
				t.Fatalf("a refused list cancelled a job: %v", j)
			}
			if _, errOut, code = s.run("jobs", "cancel", other.String(), "--tenant", "bad tenant"); code != 2 || !strings.Contains(errOut, "--tenant") {
				t.Fatalf("jobs cancel --tenant 'bad tenant': exit %d %s", code, errOut)
			}
			if _, errOut, code = s.run("jobs", "retry", other.String()); code != 2 || !strings.Contains(errOut, `"tenant" not set`) {
				t.Fatalf("jobs retry without --tenant: exit %d %s", code, errOut)
			}
			// A pending job is not retried.
			_, errOut, code = s.run("jobs", "retry", other.String(), "--tenant", "globex")
			if code != 2 || !strings.Contains(errOut, "job "+other.String()+" not retried: it is pending, and only a failed or cancelled job can be retried") {
				t.Fatalf("retrying a pending job: exit %d %s", code, errOut)
			}

			// Failed and cancelled jobs go back to pending, attempts reset,
			// and are handed out again; an unknown id in the list is
			// refused without holding up the others.
			unknown := uuid.MustParse("00000000-0000-4000-8000-000000000001")
			out, errOut, code = s.run("jobs", "retry", toFail.String(), unknown.String(), running.String(), toFail.String(), "--tenant", "acme", "--by", "alice")
			if code != 2 || !strings.Contains(errOut, "job "+unknown.String()+" not retried: not found in tenant acme") || !strings.Contains(errOut, "1 of 3 jobs not retried") {
				t.Fatalf("jobs retry: exit %d %s%s", code, out, errOut)
			}
			if want := []string{"job " + toFail.String() + " retried (was failed)", "job " + running.String() + " retried (was cancelled)"}; !slices.Equal(lines(out), want) {
				t.Fatalf("jobs retry printed\n%s\nwant\n%s", out, strings.Join(want, "\n"))
			}
			for _, id := range []uuid.UUID{toFail, running} {
				if j := s.show("acme", id); j["status"] != "pending" || j["attempts"] != float64(0) {
					t.Fatalf("jobs show after retry: %v", j)
				}
			}
			if got := jobIDs(dequeue(t, q, queue.DequeueOptions{TenantID: "acme"})...); !slices.Equal(got, jobIDs(toFail, running)) {
				t.Fatalf("after the retry acme hands out %v, want %v", got, jobIDs(toFail, running))
			}

			// Each action is in the operator record, as the dashboard's are.
			acts, err := db.Actions(ctx, driver.ActionFilter{TenantID: "acme", JobID: running})
			if err != nil {
				t.Fatal(err)
			}
			var record []string
			for _, a := range acts {
				record = append(record, a.Action+" by "+a.Actor+": "+a.Detail)
			}
			if want := []string{"retry by alice: was cancelled", "cancel by alice: was running"}; !slices.Equal(record, want) {
				t.Fatalf("operator actions on %s: %q, want %q", running, record, want)
			}
			transcripts[backend] = s.transcript
		})
	}
	sameTranscripts(t, transcripts)
}
