package queue

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/ordo-sched/ordo/chain"
)

func sha256Sum(b []byte) chain.Hash { return sha256.Sum256(b) }

// groupCommit coalesces concurrent Enqueue calls into shared transactions.
// The first caller to find no flush running becomes the leader: it takes
// everything pending (up to MaxBatch), writes it in one transaction, hands
// each caller its result, and repeats while more arrived in the meantime.
// There is no timer: under light load a job is written at once, alone;
// under heavy load batches grow by themselves while the previous commit is
// in flight.
type groupCommit struct {
	q       *Queue
	mu      sync.Mutex
	pending []*enqueueRequest
	running bool
	closed  bool
}

type enqueueRequest struct {
	job  *Prepared
	done chan enqueueOutcome
}

type enqueueOutcome struct {
	res EnqueueResult
	err error
}

// flushTimeout bounds one shared transaction. It does not come from any
// caller's context: one caller giving up must not fail the others' jobs.
const flushTimeout = 30 * time.Second

func (g *groupCommit) submit(ctx context.Context, p *Prepared) (EnqueueResult, error) {
	req := &enqueueRequest{job: p, done: make(chan enqueueOutcome, 1)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return EnqueueResult{}, ErrClosed
	}
	g.pending = append(g.pending, req)
	lead := !g.running
	if lead {
		g.running = true
	}
	g.mu.Unlock()
	if lead {
		g.flush(req)
	}
	select {
	case out := <-req.done:
		return out.res, out.err
	case <-ctx.Done():
		return EnqueueResult{}, ctx.Err()
	}
}

// flush writes pending batches until own has its result, then passes the
// leadership on to a goroutine if more is pending, so the leader's caller
// is not held up by later arrivals.
func (g *groupCommit) flush(own *enqueueRequest) {
	for {
		g.mu.Lock()
		n := min(len(g.pending), g.q.cfg.MaxBatch)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		batch := append([]*enqueueRequest(nil), g.pending[:n]...)
		g.pending = g.pending[n:]
		g.mu.Unlock()

		g.write(batch)
		if own != nil && len(own.done) == 1 {
			g.mu.Lock()
			more := len(g.pending) > 0
			if !more {
				g.running = false
			}
			g.mu.Unlock()
			if more {
				go g.flush(nil)
			}
			return
		}
	}
}

func (g *groupCommit) write(batch []*enqueueRequest) {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	jobs := make([]*Prepared, len(batch))
	for i, r := range batch {
		jobs[i] = r.job
	}
	res, err := g.q.write(ctx, jobs, g.q.now())
	if err == nil {
		for i, r := range batch {
			r.done <- enqueueOutcome{res: res[i]}
		}
		return
	}
	if len(batch) == 1 {
		batch[0].done <- enqueueOutcome{err: err}
		return
	}
	// One job's failure (a drifted chain head, say) must not fail the
	// others: write them one by one so each gets its own outcome.
	for _, r := range batch {
		res, err := g.q.write(ctx, []*Prepared{r.job}, g.q.now())
		if err != nil {
			r.done <- enqueueOutcome{err: err}
			continue
		}
		r.done <- enqueueOutcome{res: res[0]}
	}
}

func (g *groupCommit) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
