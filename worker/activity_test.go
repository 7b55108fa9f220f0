package worker_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// TestLeaderRecordsActivityBeforePruning: the maintenance leader records
// each settled minute of activity (the dashboard's charts) in the round
// that prunes finished jobs, before it prunes them, so a job's minute
// still counts once retention has deleted the job.
func TestLeaderRecordsActivityBeforePruning(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(succeed[typedArgs])
		q, rec, cfg := e.nodeA(t, w)
		cfg.Retention = queue.Retention{Succeeded: 5 * time.Minute}
		c := startClient(t, q, cfg)
		ran := driver.MinuteOf(time.UnixMilli(e.wall.UnixMilli()))
		id := insert(t, c, typedArgs{N: 1}, nil)
		rec.await(t, "the job's success", is(worker.EventJobSucceeded, id))
		e.wall.Advance(10 * time.Minute)
		ev := rec.await(t, "pruning", func(ev tagged) bool { return ev.Type == worker.EventPruned })
		if ev.Pruned.HLC+ev.Pruned.Legacy == 0 {
			t.Fatalf("pruned %+v; want the job", ev.Pruned)
		}
		got, err := q.Backend().ActivityMinutes(context.Background(), driver.ActivityParams{From: ran, To: ran.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		want := []driver.ActivityMinute{{Minute: ran, Enqueued: 1, Started: 1, Succeeded: 1}}
		if !slices.Equal(got, want) {
			t.Fatalf("activity after pruning: %+v; want %+v (recorded before the job was pruned)", got, want)
		}
	})
}

// unrunArgs is a kind no test client runs.
type unrunArgs struct{}

func (unrunArgs) Kind() string { return "test.unrun" }

// TestClientDescribesItself: Queues lists the queues that fetch, with
// their limits, kinds and the jobs running on the client now (a running
// handler's job, not the slots a fetch reserves), and PeriodicJobs the
// periodic jobs, for the dashboard.
func TestClientDescribesItself(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		started, release := make(chan struct{}, 1), make(chan struct{})
		w := handling(func(context.Context, *worker.Job[typedArgs]) error {
			started <- struct{}{}
			<-release
			return nil
		})
		q, rec, cfg := e.nodeA(t, w)
		cfg.Queues = map[string]worker.QueueConfig{"idle": {MaxWorkers: 2}} // no kind: it does not fetch
		cfg.PeriodicJobs = []worker.PeriodicJob{{Name: "hourly", Schedule: worker.Every(time.Hour), TenantID: "acme",
			Args: func(time.Time) (worker.Args, *worker.InsertOpts) { return unrunArgs{}, nil }}}
		c := startClient(t, q, cfg)
		defer close(release)
		id := insert(t, c, typedArgs{N: 1}, nil)
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("the handler did not start")
		}
		got := c.Queues()
		want := []worker.QueueInfo{{Name: worker.DefaultQueue, MaxWorkers: c.MaxWorkers(), Kinds: []string{typedArgs{}.Kind()}, Running: 1}}
		if len(got) != 1 || got[0].Name != want[0].Name || got[0].MaxWorkers != want[0].MaxWorkers || !slices.Equal(got[0].Kinds, want[0].Kinds) ||
			got[0].Running != 1 || got[0].AllKinds || got[0].Tenants.String() != "fair" {
			t.Fatalf("Queues() = %+v, want %+v", got, want)
		}
		if ps := c.PeriodicJobs(); len(ps) != 1 || ps[0].Name != "hourly" || ps[0].TenantID != "acme" {
			t.Fatalf("PeriodicJobs() = %+v", ps)
		}
		release <- struct{}{}
		rec.await(t, "the job's success", is(worker.EventJobSucceeded, id))
	})
}
