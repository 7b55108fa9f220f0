package queue

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

func sha256Sum(b []byte) chain.Hash { return sha256.Sum256(b) }

// coalescer merges concurrent calls into shared batches (group commit).
// The first caller to find no flush running becomes the leader: it takes
// everything pending (up to max), runs it as one batch, hands each caller
// its outcome, and repeats while more arrived in the meantime. There is no
// timer: under light load a call runs at once, alone; under heavy load
// batches grow by themselves while the previous one is in flight. Enqueues
// and job transitions (completions, retries) each have one.
type coalescer[T, R any] struct {
	max int
	// batch runs items as one transaction and returns one outcome per
	// item, in order; an error means none was applied. It gets its own
	// context: one caller giving up must not fail the others' items.
	batch func(ctx context.Context, items []T) ([]outcome[R], error)
	// one runs a single item. After a failed batch every item is run
	// alone, so that one item's failure (a drifted chain head, say) does
	// not fail the others.
	one func(ctx context.Context, item T) outcome[R]

	mu      sync.Mutex
	pending []*call[T, R]
	running bool
	closed  bool
}

type call[T, R any] struct {
	item T
	done chan outcome[R]
}

type outcome[R any] struct {
	res R
	err error
}

// flushTimeout bounds one shared batch. It does not come from any caller's
// context, for the reason given at coalescer.batch.
const flushTimeout = 30 * time.Second

// submit adds item to the next batch and waits for its outcome or for ctx
// to end (the batch then still runs).
func (c *coalescer[T, R]) submit(ctx context.Context, item T) (R, error) {
	req := &call[T, R]{item: item, done: make(chan outcome[R], 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		var zero R
		return zero, ErrClosed
	}
	c.pending = append(c.pending, req)
	lead := !c.running
	if lead {
		c.running = true
	}
	c.mu.Unlock()
	if lead {
		c.flush(req)
	}
	select {
	case out := <-req.done:
		return out.res, out.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// flush runs pending batches until own has its outcome, then passes the
// leadership on to a goroutine if more is pending, so the leader's caller
// is not held up by later arrivals.
func (c *coalescer[T, R]) flush(own *call[T, R]) {
	for {
		c.mu.Lock()
		n := min(len(c.pending), c.max)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		batch := append([]*call[T, R](nil), c.pending[:n]...)
		c.pending = c.pending[n:]
		c.mu.Unlock()

		c.runBatch(batch)
		if own != nil && len(own.done) == 1 {
			c.mu.Lock()
			more := len(c.pending) > 0
			if !more {
				c.running = false
			}
			c.mu.Unlock()
			if more {
				go c.flush(nil)
			}
			return
		}
	}
}

func (c *coalescer[T, R]) runBatch(batch []*call[T, R]) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	items := make([]T, len(batch))
	for i, r := range batch {
		items[i] = r.item
	}
	outs, err := c.batch(ctx, items)
	if err != nil {
		outs = make([]outcome[R], len(items))
		if len(items) == 1 {
			outs[0].err = err
		} else {
			for i, item := range items {
				outs[i] = c.one(ctx, item)
			}
		}
	}
	for i, r := range batch {
		r.done <- outs[i]
	}
}

func (c *coalescer[T, R]) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// writeBatch and writeOne are the enqueue coalescer's runs.
func (q *Queue) writeBatch(ctx context.Context, jobs []*driver.Prepared) ([]outcome[EnqueueResult], error) {
	res, err := q.write(ctx, jobs, q.now())
	if err != nil {
		return nil, err
	}
	outs := make([]outcome[EnqueueResult], len(jobs))
	for i := range jobs {
		outs[i].res = res[i]
	}
	return outs, nil
}

func (q *Queue) writeOne(ctx context.Context, job *driver.Prepared) outcome[EnqueueResult] {
	res, err := q.write(ctx, []*driver.Prepared{job}, q.now())
	if err != nil {
		return outcome[EnqueueResult]{err: err}
	}
	return outcome[EnqueueResult]{res: res[0]}
}

// transitionBatch and transitionOne are the transition coalescer's runs.
func (q *Queue) transitionBatch(ctx context.Context, ts []driver.Transition) ([]outcome[struct{}], error) {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	errs, err := q.backend.TransitionJobs(ctx, ts)
	if err != nil {
		return nil, err
	}
	outs := make([]outcome[struct{}], len(ts))
	for i := range ts {
		outs[i].err = errs[i]
	}
	return outs, nil
}

func (q *Queue) transitionOne(ctx context.Context, t driver.Transition) outcome[struct{}] {
	q.reconcileMu.RLock()
	defer q.reconcileMu.RUnlock()
	return outcome[struct{}]{err: q.backend.TransitionJob(ctx, t)}
}
