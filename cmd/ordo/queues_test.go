package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
)

// listQueues is `ordo queues list` decoded.
func (s *cliSession) listQueues(args ...string) queuesJSON {
	s.t.Helper()
	out, errOut, code := s.run(append([]string{"queues", "list"}, args...)...)
	var res queuesJSON
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		s.t.Fatalf("queues list: exit %d %s%s", code, out, errOut)
	}
	return res
}

// Issue 16: ordo queues pause stops a queue's jobs from being handed out,
// queues list shows who paused what, and resume hands them out again.
func TestQueuesPauseListResume(t *testing.T) {
	transcripts := map[string][]string{}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := testdb.SQLiteURL(t)
			if backend == "postgres" {
				url = testdb.NewDatabase(t)
			}
			s := &cliSession{t: t, db: url}
			ctx := context.Background()
			email := s.enqueue("acme", "email.send", `{"n":1}`)
			report := s.enqueue("acme", "report.build", `{"n":2}`)
			globexEmail := s.enqueue("globex", "email.send", `{"n":3}`)
			q, db := worker(t, url)

			if got := s.listQueues(); len(got.Paused) != 0 || !slices.Equal(got.Tenants, []tenantJSON{{Tenant: "acme", Pending: 2}, {Tenant: "globex", Pending: 1}}) {
				t.Fatalf("queues list before any pause: %+v", got)
			}

			before := time.Now().Add(-time.Millisecond)
			out, errOut, code := s.run("queues", "pause", "--tenant", "acme", "--kind", "email.send", "--by", "alice")
			after := time.Now()
			if code != 0 || out != "queue acme/email.send paused by alice\n" {
				t.Fatalf("queues pause: exit %d %s%s", code, out, errOut)
			}
			// acme's email.send is held back; its other kind and another
			// tenant's email.send are not.
			if got := jobIDs(dequeue(t, q, queue.DequeueOptions{TenantID: "acme"})...); !slices.Equal(got, jobIDs(report)) {
				t.Fatalf("acme hands out %v while acme/email.send is paused, want %v", got, jobIDs(report))
			}
			if got := jobIDs(dequeue(t, q, queue.DequeueOptions{Kinds: []string{"email.send"}})...); !slices.Equal(got, jobIDs(globexEmail)) {
				t.Fatalf("email.send hands out %v while acme/email.send is paused, want %v", got, jobIDs(globexEmail))
			}
			got := s.listQueues("--tenant", "acme")
			if len(got.Paused) != 1 || got.Paused[0].Tenant != "acme" || got.Paused[0].Kind != "email.send" || got.Paused[0].PausedBy != "alice" ||
				got.Paused[0].PausedAt.Before(before) || got.Paused[0].PausedAt.After(after) {
				t.Fatalf("queues list --tenant acme after the pause (at %v..%v): %+v", before, after, got.Paused)
			}
			if !slices.Equal(got.Tenants, []tenantJSON{{Tenant: "acme", Pending: 1, Running: 1}}) {
				t.Fatalf("queues list --tenant acme counts: %+v", got.Tenants)
			}

			// A second pause keeps the first, and says so with exit 1.
			out, errOut, code = s.run("queues", "pause", "--tenant", "acme", "--kind", "email.send", "--by", "bob")
			if code != 1 || !strings.Contains(out, "queue acme/email.send was already paused, since ") || !strings.Contains(out, " by alice; that pause is kept") {
				t.Fatalf("pausing a paused queue: exit %d %s%s", code, out, errOut)
			}
			if got := s.listQueues(); len(got.Paused) != 1 || got.Paused[0].PausedBy != "alice" {
				t.Fatalf("the second pause replaced the first: %+v", got.Paused)
			}

			// The whole queue and one kind are separate pauses.
			if out, errOut, code = s.run("queues", "pause", "--tenant", "acme", "--by", "alice"); code != 0 || out != "queue acme (every kind) paused by alice\n" {
				t.Fatalf("queues pause of acme's whole queue: exit %d %s%s", code, out, errOut)
			}
			if out, errOut, code = s.run("queues", "resume", "--tenant", "acme", "--kind", "email.send", "--by", "alice"); code != 0 || out != "queue acme/email.send resumed\n" {
				t.Fatalf("queues resume: exit %d %s%s", code, out, errOut)
			}
			if got := dequeue(t, q, queue.DequeueOptions{TenantID: "acme"}); len(got) != 0 {
				t.Fatalf("acme hands out %v while its whole queue is paused", jobIDs(got...))
			}
			// Resuming what is not paused (a mistyped kind) changes
			// nothing, exits 1 and says what is paused.
			out, errOut, code = s.run("queues", "resume", "--tenant", "acme", "--kind", "emial.send")
			if code != 1 || out != "queue acme/emial.send was not paused; paused queues of tenant acme: acme (every kind)\n" ||
				!strings.Contains(errOut, "queue acme/emial.send was not paused: nothing changed") {
				t.Fatalf("resuming a queue that is not paused: exit %d %s%s", code, out, errOut)
			}
			if out, errOut, code = s.run("queues", "resume", "--tenant", "acme", "--by", "alice"); code != 0 || out != "queue acme (every kind) resumed\n" {
				t.Fatalf("queues resume of acme's whole queue: exit %d %s%s", code, out, errOut)
			}
			if got := jobIDs(dequeue(t, q, queue.DequeueOptions{TenantID: "acme"})...); !slices.Equal(got, jobIDs(email)) {
				t.Fatalf("after the resume acme hands out %v, want %v", got, jobIDs(email))
			}
			if got := s.listQueues(); len(got.Paused) != 0 || !slices.Equal(got.Tenants, []tenantJSON{{Tenant: "acme", Running: 2}, {Tenant: "globex", Running: 1}}) {
				t.Fatalf("queues list after the resume: %+v", got)
			}
			// A tenant without jobs is listed with zeros, not left out.
			if got := s.listQueues("--tenant", "initech"); len(got.Paused) != 0 || !slices.Equal(got.Tenants, []tenantJSON{{Tenant: "initech"}}) {
				t.Fatalf("queues list --tenant initech: %+v", got)
			}

			// What was done is in the operator record, as the dashboard's
			// actions are.
			acts, err := db.Actions(ctx, driver.ActionFilter{TenantID: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			var record []string
			for _, a := range acts {
				record = append(record, a.Action+" "+queueName(driver.QueueKey{TenantID: a.TenantID, Kind: a.Kind})+" by "+a.Actor)
			}
			if want := []string{"resume acme (every kind) by alice", "resume acme/email.send by alice", "pause acme (every kind) by alice", "pause acme/email.send by alice"}; !slices.Equal(record, want) {
				t.Fatalf("operator actions: %q, want %q", record, want)
			}

			// Caller mistakes exit 2 and change nothing.
			for _, args := range [][]string{
				{"queues", "pause", "--tenant", "bad tenant"},
				{"queues", "pause", "--tenant", "acme", "--kind", ""},
				{"queues", "pause", "--tenant", "acme", "--kind", "bad kind"},
				{"queues", "pause", "--kind", "email.send"},
				{"queues", "pause", "--tenant", "acme", "--by", "a\nb"},
				{"queues", "resume", "--tenant", "bad tenant"},
				{"queues", "list", "--tenant", "bad tenant"},
			} {
				if out, errOut, code := s.run(args...); code != 2 || out != "" || errOut == "" {
					t.Errorf("ordo %q: exit %d %s%s, want 2 and an error", args, code, out, errOut)
				}
			}
			if got := s.listQueues(); len(got.Paused) != 0 {
				t.Fatalf("a refused pause paused %+v", got.Paused)
			}
			transcripts[backend] = s.transcript
		})
	}
	sameTranscripts(t, transcripts)
}
