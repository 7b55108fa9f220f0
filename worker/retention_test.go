package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// TestLeaderPrunesFinishedJobs: the maintenance leader deletes the state
// of a job once it finished longer ago than Config.Retention keeps it (24
// hours for a succeeded job by default), and not before; the job then
// reads as pruned from its log entry.
func TestLeaderPrunesFinishedJobs(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		w := handling(succeed[typedArgs])
		q, rec, cfg := e.nodeA(t, w)
		c := startClient(t, q, cfg)
		id := insert(t, c, typedArgs{N: 1}, nil)
		rec.await(t, "the job's success", is(worker.EventJobSucceeded, id))
		// Younger than the default retention: nothing is due.
		e.wall.Advance(23 * time.Hour)
		if r, err := q.Prune(context.Background(), queue.Retention{}); err != nil || r.HLC+r.Legacy != 0 {
			t.Fatalf("Prune with the default retention 23h after: %+v, %v; want nothing (kept for 24h)", r, err)
		}
		if info := get(t, q, id); info.Status != queue.StatusSucceeded {
			t.Fatalf("after 23h: status %s, want succeeded", info.Status)
		}
		e.wall.Advance(2 * time.Hour)
		ev := rec.await(t, "pruning", func(ev tagged) bool { return ev.Type == worker.EventPruned })
		if ev.Pruned.HLC != 1 || ev.Pruned.Legacy != 0 {
			t.Fatalf("pruned %+v; want the one job's HLC state", ev.Pruned)
		}
		info := get(t, q, id)
		if !info.Pruned || info.Status != queue.StatusPruned || info.Kind != (typedArgs{}).Kind() {
			t.Fatalf("after pruning: %+v; want the job read as pruned from its log entry", info)
		}
	})
}
