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
