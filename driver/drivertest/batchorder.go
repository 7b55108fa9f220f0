package drivertest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/queue"
)

// testBatchOrder: one Dequeue of many jobs returns them in the mode's
// order, so a worker that processes a batch front to back runs jobs in
// the same order as one that takes them one at a time.
func testBatchOrder(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		type meta struct {
			priority int
			created  int64
			thlc     string
		}
		info := map[uuid.UUID]meta{}
		for round := range 4 {
			jobs := make([]queue.Job, 250)
			for i := range jobs {
				k := round*250 + i
				jobs[i] = job(fmt.Sprint("t", k%7), fmt.Sprint("p", k%5), k)
				jobs[i].Priority = (k * 37) % 11 // scrambled
			}
			for i, r := range n.enqueueMany(jobs) {
				info[r.JobID] = meta{jobs[i].Priority, n.wall.UnixMilli(), r.THLC}
			}
			n.advance(time.Second)
		}
		h.exec("ANALYZE") // plan with real statistics, as in production
		for range 3 {
			ls := n.dequeue(queue.DequeueOptions{Limit: 200})
			if len(ls) != 200 {
				t.Fatalf("Dequeue(Limit 200): %d leases", len(ls))
			}
			for i := 1; i < len(ls); i++ {
				a, b := info[ls[i-1].JobID], info[ls[i].JobID]
				var inOrder bool
				if o.Mode().ReadsHlc() {
					inOrder = a.thlc < b.thlc
				} else {
					inOrder = a.priority > b.priority || a.priority == b.priority && a.created <= b.created
				}
				if !inOrder {
					t.Fatalf("lease %d of the batch (priority %d, created %d, t_hlc %s) comes after (priority %d, created %d, t_hlc %s)",
						i, b.priority, b.created, b.thlc, a.priority, a.created, a.thlc)
				}
			}
			for _, l := range ls {
				n.complete(l)
			}
		}
	})
}
