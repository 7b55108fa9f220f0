package service

import (
	"context"
	"sync"

	"github.com/ordo-sched/ordo/queue"
)

// wakeups tells long-polling dequeues that jobs may have arrived: after
// an enqueue through this node's queue, or a NOTIFY from another node's
// (PostgreSQL). One listener serves every waiting request, so that a
// thousand waiting clients hold no database connection each.
type wakeups struct {
	mu      sync.Mutex
	next    chan struct{} // closed at the next wakeup, then replaced
	stopped chan struct{} // closed when the service starts shutting down
	stop    sync.Once
}

func newWakeups() *wakeups {
	return &wakeups{next: make(chan struct{}), stopped: make(chan struct{})}
}

// current is the channel the next wakeup closes. A waiter takes it before
// it looks for jobs, so that a wakeup between its look and its wait is
// not lost.
func (w *wakeups) current() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

func (w *wakeups) fire() {
	w.mu.Lock()
	close(w.next)
	w.next = make(chan struct{})
	w.mu.Unlock()
}

// shutdown ends every wait: srv.Shutdown waits for requests in flight,
// and a long poll must not hold it for its whole wait.
func (w *wakeups) shutdown() { w.stop.Do(func() { close(w.stopped) }) }

// run fires on every in-process enqueue and every notification of the
// backend, until ctx ends.
func (w *wakeups) run(ctx context.Context, q *queue.Queue, logWarn func(msg string, args ...any)) {
	sub, unsubscribe := q.Subscribe()
	defer unsubscribe()
	var listened <-chan struct{}
	if q.Backend().Capabilities().Listen {
		ch, err := q.Backend().Listen(ctx)
		if err != nil {
			logWarn("long-poll dequeues cannot listen for other nodes' jobs; they look again every second", "error", err)
		} else {
			listened = ch
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub:
		case _, ok := <-listened:
			if !ok {
				listened = nil // the listener ended; in-process wakeups and rechecks remain
				continue
			}
		}
		w.fire()
	}
}
