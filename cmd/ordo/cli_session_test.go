package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// cliSession runs ordo commands against one database and keeps a
// transcript of what each answered (exit code, stdout, stderr), with
// times masked, so that a test can require both backends to answer the
// same commands the same way.
type cliSession struct {
	t          *testing.T
	db         string
	transcript []string
}

var timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

func (s *cliSession) run(args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	stdout, stderr, code = runCLI(s.t, append(args, "--db", s.db, "--node", "cli-test")...)
	s.transcript = append(s.transcript, strings.Join(args, " "), fmt.Sprint("exit ", code),
		timeRE.ReplaceAllString(stdout, "<time>"), timeRE.ReplaceAllString(stderr, "<time>"))
	return stdout, stderr, code
}

// enqueue enqueues a job with the CLI, in dual-write mode (both sides hold
// it, so every action must reach both), and returns its id. It is not in
// the transcript: its t_hlc differs from run to run.
func (s *cliSession) enqueue(tenant, kind, payload string) uuid.UUID {
	s.t.Helper()
	out, errOut, code := runCLI(s.t, "enqueue", "--db", s.db, "--node", "cli-test", "--dual-write-mode",
		"--tenant", tenant, "--kind", kind, "--payload", payload)
	var res struct {
		JobID uuid.UUID `json:"job_id"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		s.t.Fatalf("enqueue: exit %d %s%s", code, out, errOut)
	}
	return res.JobID
}

// show is the job as `ordo jobs show` prints it.
func (s *cliSession) show(tenant string, id uuid.UUID) map[string]any {
	s.t.Helper()
	out, errOut, code := runCLI(s.t, "jobs", "show", id.String(), "--tenant", tenant, "--db", s.db)
	var j map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &j) != nil {
		s.t.Fatalf("jobs show %s: exit %d %s%s", id, code, out, errOut)
	}
	return j
}

// worker is a queue on the same database, as a worker process has it.
func worker(t *testing.T, url string) (*queue.Queue, store.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: "worker-1", Store: db.HLCState()})
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{DualWriteMode: true}, SkipReconcile: true})
	if err != nil {
		_ = db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q, db
}

// dequeue hands out what q hands out under o (up to 100 jobs), sorted by
// job id.
func dequeue(t *testing.T, q *queue.Queue, o queue.DequeueOptions) []queue.Lease {
	t.Helper()
	if o.Limit == 0 {
		o.Limit = 100
	}
	leases, err := q.Dequeue(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(leases, func(a, b queue.Lease) int { return strings.Compare(a.JobID.String(), b.JobID.String()) })
	return leases
}

// jobIDs are the ids of leases, or the ids given, sorted.
func jobIDs[T queue.Lease | uuid.UUID](xs ...T) []string {
	out := []string{}
	for _, x := range xs {
		switch x := any(x).(type) {
		case queue.Lease:
			out = append(out, x.JobID.String())
		case uuid.UUID:
			out = append(out, x.String())
		}
	}
	slices.Sort(out)
	return out
}

func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// sameTranscripts fails unless every backend answered every command the
// same way.
func sameTranscripts(t *testing.T, transcripts map[string][]string) {
	t.Helper()
	a, b := transcripts["sqlite"], transcripts["postgres"]
	if a == nil || b == nil {
		return // a subtest failed already
	}
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			t.Fatalf("the backends answered differently (line %d of the transcript):\nsqlite:   %q\npostgres: %q", i, x, y)
		}
	}
}

// sqlDB opens the SQLite file of url directly, closed when the test ends.
func sqlDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	path, _ := sqlite.PathOf(url)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
