package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// HeadRefreshInterval is how often, at most, one process rewrites a
// chain's scheduler.chain_heads row while it appends to the chain.
//
// The guide calls chain_heads a cache for O(1) access to the latest link.
// Updated with every append it is the hottest row of the database: under a
// transaction horizon held elsewhere every update leaves a dead version
// that no vacuum may remove, and every later lookup walks them (issue 13
// saw 57,011 versions and a lookup at 30 ms after 8 minutes). So an append
// reads its predecessor from the log itself, the last entry of the chain by
// idx_scheduler_log_chain (insert-only, so nothing dead to step over), and
// chain_heads trails the log by at most this interval: written with the
// batch that first appends to a chain and then at most once per interval,
// by a timer for the batches in between, and on Close. It never moves
// backwards, so it always names an entry of the chain, which is what the
// verifier checks (docs/chain-spec.md, section 8, check 9).
const HeadRefreshInterval = time.Second

// headCache decides which appends write chain_heads, and writes the
// others' heads later. Its memory is one entry per chain appended to.
type headCache struct {
	interval time.Duration
	now      func() time.Time
	write    func(ctx context.Context, keys []chain.Key, heads []driver.Head, at time.Time) error

	flushing sync.Mutex // held by a flush, so close waits for the timer's

	mu      sync.Mutex
	wrote   map[chain.Key]time.Time   // when this process last wrote the chain's row
	pending map[chain.Key]driver.Head // newest committed head not written yet
	timer   *time.Timer
	closed  bool
	flushed func() // test hook: called after each timer flush
}

func newHeadCache(write func(context.Context, []chain.Key, []driver.Head, time.Time) error) *headCache {
	return &headCache{
		interval: HeadRefreshInterval,
		now:      time.Now,
		write:    write,
		wrote:    map[chain.Key]time.Time{},
		pending:  map[chain.Key]driver.Head{},
	}
}

// split divides a batch's new heads into those its transaction writes and
// those it leaves to the timer (deferred). Nothing is recorded until the
// transaction commits (committed): a batch that fails must not make the
// next one skip a chain's first head.
func (c *headCache) split(keys []chain.Key, heads []driver.Head) (now, later []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now()
	for i, k := range keys {
		if last, ok := c.wrote[k]; ok && t.Sub(last) < c.interval && t.Sub(last) >= 0 {
			later = append(later, i)
			continue
		}
		now = append(now, i)
	}
	return now, later
}

// maxRemembered bounds wrote: past it, entries older than the interval,
// which decide nothing any more, are dropped.
const maxRemembered = 10_000

// committed records the heads of a committed batch: those it wrote are no
// longer pending (unless a newer one is), the deferred ones are, and the
// timer is set to write them when their interval ends.
func (c *headCache) committed(keys []chain.Key, heads []driver.Head, wroteIdx, laterIdx []int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now()
	for _, i := range wroteIdx {
		c.wrote[keys[i]] = t
		if p, ok := c.pending[keys[i]]; ok && p.Count <= heads[i].Count {
			delete(c.pending, keys[i])
		}
	}
	if len(c.wrote) > maxRemembered {
		for k, at := range c.wrote {
			if _, waiting := c.pending[k]; !waiting && t.Sub(at) >= c.interval {
				delete(c.wrote, k)
			}
		}
	}
	for _, i := range laterIdx {
		if p, ok := c.pending[keys[i]]; !ok || p.Count < heads[i].Count {
			c.pending[keys[i]] = heads[i]
		}
	}
	if len(c.pending) > 0 && c.timer == nil && !c.closed {
		c.timer = time.AfterFunc(c.interval, c.flushTimer)
	}
}

// take removes and returns every pending head.
func (c *headCache) take() ([]chain.Key, []driver.Head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]chain.Key, 0, len(c.pending))
	t := c.now()
	for k := range c.pending {
		keys = append(keys, k)
		c.wrote[k] = t
	}
	// In key order, as enqueue transactions lock heads: a write that took
	// rows in another order could deadlock with them.
	slices.SortFunc(keys, func(a, b chain.Key) int { return a.Compare(b) })
	heads := make([]driver.Head, len(keys))
	for i, k := range keys {
		heads[i] = c.pending[k]
	}
	clear(c.pending)
	return keys, heads
}

// putBack returns heads whose write failed, unless newer ones arrived.
func (c *headCache) putBack(keys []chain.Key, heads []driver.Head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, k := range keys {
		if p, ok := c.pending[k]; !ok || p.Count < heads[i].Count {
			c.pending[k] = heads[i]
		}
	}
}

// flush writes every pending head now.
func (c *headCache) flush(ctx context.Context) error {
	c.flushing.Lock()
	defer c.flushing.Unlock()
	keys, heads := c.take()
	if len(keys) == 0 {
		return nil
	}
	if err := c.write(ctx, keys, heads, c.now()); err != nil {
		c.putBack(keys, heads)
		return err
	}
	return nil
}

func (c *headCache) flushTimer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*c.interval)
	err := c.flush(ctx)
	cancel()
	c.mu.Lock()
	c.timer = nil
	// A failed write (the database restarting) is tried again an interval
	// later; the row meanwhile names an older entry, which is allowed.
	if (err != nil || len(c.pending) > 0) && !c.closed {
		c.timer = time.AfterFunc(c.interval, c.flushTimer)
	}
	hook := c.flushed
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// closeTimeout bounds close's write: a database that does not answer
// must not hold up a process that is stopping.
const closeTimeout = 5 * time.Second

// close stops the timer and writes what is pending, so a process that
// stops leaves every chain_heads row it owes up to date.
func (c *headCache) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	c.mu.Lock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.mu.Unlock()
	return c.flush(ctx)
}
