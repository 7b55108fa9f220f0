package worker_test

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// TestOutcomesSurviveAPostgresRestart: jobs whose handlers finish while
// PostgreSQL is down have their outcomes written once it is back, so
// nothing runs again. Before, a failed outcome write was logged and
// dropped, and every such job ran a second time once its lease expired
// (7 and 9 jobs in two restarts under load).
//
// It stops and starts the real server (scripts/with-postgres.sh's pgctl),
// so make test runs it in a step of its own, with no other test sharing
// the outage.
func TestOutcomesSurviveAPostgresRestart(t *testing.T) {
	pgctl := os.Getenv("ORDO_TEST_PG_CTL")
	if pgctl == "" {
		t.Fatal("ORDO_TEST_PG_CTL is not set: this test restarts PostgreSQL, which only a cluster that scripts/with-postgres.sh started can do; run `make test`")
	}
	ctl := func(verb string) {
		t.Helper()
		if out, err := exec.Command(pgctl, verb).CombinedOutput(); err != nil {
			t.Fatalf("pgctl %s: %v\n%s", verb, err, out)
		}
	}
	e := newPostgresEnv(t)
	const jobs = 20
	release := make(chan struct{})
	w := handling(func(ctx context.Context, j *worker.Job[typedArgs]) error {
		<-release
		return nil
	})
	rec := newRecorder()
	cfg := testConfig(w, rec, "a", logs(t))
	cfg.MaxWorkers = jobs
	q := e.queue("node-a")
	c := startClient(t, q, cfg)
	var ids []uuid.UUID
	for i := range jobs {
		ids = append(ids, insert(t, c, typedArgs{N: i}, nil))
	}
	for _, id := range ids {
		rec.await(t, "the job's start", is(worker.EventJobStarted, id))
	}

	ctl("stop")
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = exec.Command(pgctl, "start").Run() // leave the cluster running for what follows
		}
	})
	close(release) // every outcome is now written while the server is down
	for _, id := range ids {
		rec.await(t, "the outcome write failing and being retried", is(worker.EventOutcomeRetrying, id))
	}
	ctl("start")
	stopped = false

	for _, id := range ids {
		rec.await(t, "the job's success once the server is back", is(worker.EventJobSucceeded, id))
	}
	for _, id := range ids {
		if n := len(rec.all(is(worker.EventJobStarted, id))); n != 1 {
			t.Errorf("job %s started %d times, want once", id, n)
		}
		if info := get(t, q, id); info.Status != queue.StatusSucceeded || info.Attempts != 1 {
			t.Errorf("job %s: status %s, attempts %d; want succeeded on its first attempt", id, info.Status, info.Attempts)
		}
	}
	if lost := rec.all(is(worker.EventLeaseLost, uuid.UUID{})); len(lost) > 0 {
		t.Errorf("%d leases lost over the restart", len(lost))
	}
}
