package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
	ordoworker "github.com/ordo-sched/ordo/worker"
)

type orderedArgs struct {
	N int `json:"n"`
}

func (orderedArgs) Kind() string { return "ordered" }

type looseArgs struct {
	N int `json:"n"`
}

func (looseArgs) Kind() string { return "loose" }

// TestVerifyOrder: after a real worker run (strict partitions for one
// kind, plain parallel dequeues for another), `ordo verify --order` finds
// the strict partitions in order and reports each queue's share of
// inversions; a constructed inversion elsewhere is reported but passes, one
// in a strict partition fails with exit 1 and names the jobs.
func TestVerifyOrder(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db, err := store.OpenMigrated(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Store: db.HLCState()})
		if err != nil {
			t.Fatal(err)
		}
		q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true}})
		if err != nil {
			t.Fatal(err)
		}
		const partitions, perPartition, loose = 3, 6, 12
		total := int64(partitions*perPartition + loose)
		var succeeded atomic.Int64
		done := make(chan struct{})
		workers := ordoworker.NewWorkers()
		ordoworker.AddWorker(workers, ordoworker.WorkFunc[orderedArgs](func(context.Context, *ordoworker.Job[orderedArgs]) error { return nil }),
			ordoworker.KindOptions{Queue: "strict"})
		ordoworker.AddWorker(workers, ordoworker.WorkFunc[looseArgs](func(context.Context, *ordoworker.Job[looseArgs]) error { return nil }))
		client, err := ordoworker.NewClient(q, ordoworker.Config{
			Workers: workers, ID: "order-test", PollInterval: 5 * time.Millisecond,
			Queues: map[string]ordoworker.QueueConfig{"strict": {MaxWorkers: 4, StrictPartitions: true, Tenants: ordoworker.TenantsFIFO}, ordoworker.DefaultQueue: {MaxWorkers: 4}},
			OnEvent: func(e ordoworker.Event) {
				if e.Type == ordoworker.EventJobSucceeded && succeeded.Add(1) == total {
					close(done)
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		var jobs []queue.Job
		for i := range perPartition {
			for p := range partitions {
				jobs = append(jobs, queue.Job{TenantID: "acme", PartitionKey: fmt.Sprint("p", p), Kind: "ordered", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			}
			for k := range loose / perPartition {
				jobs = append(jobs, queue.Job{TenantID: "acme", Kind: "loose", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i*10+k))})
			}
		}
		res, err := q.EnqueueMany(ctx, jobs)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(testsignal.Timeout):
			t.Fatalf("%d of %d jobs succeeded", succeeded.Load(), total)
		}
		if err := client.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		strict := []string{"--db", url, "verify", "--order", "--tenant", "acme", "--strict", "p0", "--strict", "p1", "--strict", "p2"}
		out, code := runAuditCLI(t, strict...)
		if code != 0 || strings.Count(out, "in order") != partitions || !strings.Contains(out, fmt.Sprintf("queue acme/loose: %d jobs", loose)) ||
			!strings.Contains(out, fmt.Sprintf("%d started jobs", total)) {
			t.Fatalf("after the worker run: exit %d\n%s", code, out)
		}

		// Jobs in t_hlc order: jobs[i] is res[i]. Move a first start
		// before its predecessor's: in the loose queue it is counted,
		// in a strict partition it fails.
		startedAt := func(id uuid.UUID) time.Time {
			t.Helper()
			var at time.Time
			var err error
			switch d := db.(type) {
			case *postgres.DB:
				err = d.Pool.QueryRow(ctx, `SELECT started_at FROM scheduler.job_state WHERE job_id = $1`, id).Scan(&at)
			case *sqlite.DB:
				var ms int64
				err = d.SQL.QueryRowContext(ctx, `SELECT started_at FROM job_state WHERE job_id = ?1`, id.String()).Scan(&ms)
				at = time.UnixMilli(ms)
			}
			if err != nil || at.IsZero() {
				t.Fatalf("first start of job %s: %v, %v", id, at, err)
			}
			return at
		}
		setStarted := func(id uuid.UUID, at time.Time) {
			t.Helper()
			var err error
			switch d := db.(type) {
			case *postgres.DB:
				_, err = d.Pool.Exec(ctx, `UPDATE scheduler.job_state SET started_at = $1 WHERE job_id = $2`, at, id)
			case *sqlite.DB:
				_, err = d.SQL.ExecContext(ctx, `UPDATE job_state SET started_at = ?1 WHERE job_id = ?2`, at.UnixMilli(), id.String())
			default:
				t.Fatalf("backend %T", db)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var looseIDs, p1IDs []uuid.UUID
		for i, j := range jobs {
			switch {
			case j.Kind == "loose":
				looseIDs = append(looseIDs, res[i].JobID)
			case j.PartitionKey == "p1":
				p1IDs = append(p1IDs, res[i].JobID)
			}
		}
		setStarted(looseIDs[len(looseIDs)-1], startedAt(looseIDs[0]).Add(-time.Second))
		out, code = runAuditCLI(t, strict...)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("queue acme/loose: %d jobs, 1 inversions (%.2f%%)", loose, 100.0/loose)) ||
			!strings.Contains(out, looseIDs[len(looseIDs)-1].String()) {
			t.Fatalf("after an inversion in the loose queue: exit %d\n%s", code, out)
		}

		setStarted(p1IDs[3], startedAt(p1IDs[1]).Add(-time.Millisecond))
		out, code = runAuditCLI(t, strict...)
		if code != 1 || !strings.Contains(out, `strict partition "p1": 6 jobs: OUT OF ORDER (1 inversions)`) ||
			!strings.Contains(out, "job "+p1IDs[3].String()) || !strings.Contains(out, "before job "+p1IDs[2].String()) {
			t.Fatalf("after an inversion in strict partition p1: exit %d\n%s", code, out)
		}
		// Not named strict, p1's jobs count in their queue instead.
		out, code = runAuditCLI(t, "--db", url, "verify", "--order", "--tenant", "acme", "--json")
		var got []audit.OrderResult
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 || len(got[0].StrictPartitions) != 0 || !got[0].Valid {
			t.Fatalf("--order without --strict: exit %d\n%s", code, out)
		}
		for _, sc := range got[0].Queues {
			if sc.Kind == "ordered" && (sc.Jobs != partitions*perPartition || sc.Inversions < 1) {
				t.Fatalf("queue ordered: %+v", sc)
			}
		}
	})
}

// TestVerifyOrderBadInput: flags that do not go together are refused
// with a clear error, before the database is opened.
func TestVerifyOrderBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--tenant", "acme", "--strict", "p1"}, "need --order"},
		{[]string{"verify", "--order", "--tenant", "acme", "--strict", "p1", "--strict-all"}, "not both"},
		{[]string{"verify", "--order", "--tenant", "acme", "--strict", "bad\x00key"}, "--strict"},
		{[]string{"verify", "--order", "--tenant", "acme", "--partition", "p1"}, "no --partition"},
	} {
		out, code := runCLIWithDB(t, dir, tc.args...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("ordo %v: exit %d, want 2 with %q\n%s", tc.args, code, tc.want, out)
		}
	}
	// A database without started jobs: nothing compared is not a pass.
	path := dir + "/empty.db"
	fill(t, path, 3)
	if out, code := runAuditCLI(t, "--db", "sqlite:"+path, "verify", "--order", "--tenant", "acme"); code != 1 || !strings.Contains(out, "0 started jobs") {
		t.Fatalf("no started jobs: exit %d\n%s", code, out)
	}
}

// runCLIWithDB runs an audit command on a SQLite file in dir and returns
// its output and error text together.
func runCLIWithDB(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	_, stderr, code := runCLI(t, append([]string{"--db", "sqlite:" + dir + "/none.db"}, args...)...)
	return stderr, code
}
