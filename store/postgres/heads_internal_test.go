package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// A batch whose transaction fails records nothing: the next batch of the
// chain writes its head, so a new chain never stays without a
// chain_heads row because its first append was retried.
func TestHeadCacheRecordsOnlyCommittedWrites(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newHeadCache(func(context.Context, []chain.Key, []driver.Head, time.Time) error { return nil })
	c.interval, c.now = time.Hour, func() time.Time { return now }
	keys, heads := []chain.Key{{TenantID: "acme"}}, []driver.Head{{Exists: true, Count: 1}}
	if w, _ := c.split(keys, heads); len(w) != 1 {
		t.Fatal("a chain's first batch does not write its head")
	}
	// That transaction failed: committed is not called.
	w, later := c.split(keys, heads)
	if len(w) != 1 || len(later) != 0 {
		t.Fatalf("after a failed first batch: write %v, defer %v; want the head written", w, later)
	}
	c.committed(keys, heads, w, later)
	if w, later := c.split(keys, heads); len(w) != 0 || len(later) != 1 {
		t.Fatalf("after a committed write: write %v, defer %v; want deferred", w, later)
	}
}

// The timer writes pending heads in key order, as enqueue transactions
// lock them, so the two cannot deadlock.
func TestHeadCacheTakesInKeyOrder(t *testing.T) {
	c := newHeadCache(func(context.Context, []chain.Key, []driver.Head, time.Time) error { return nil })
	for _, p := range []string{"z", "a", "m", "b", "y"} {
		c.pending[chain.Key{TenantID: "acme", PartitionKey: p}] = driver.Head{Exists: true, Count: int64(p[0])}
	}
	keys, heads := c.take()
	for i := range keys {
		if heads[i].Count != int64(keys[i].PartitionKey[0]) {
			t.Fatalf("head %d is not its key's", i)
		}
		if i > 0 && keys[i-1].Compare(keys[i]) >= 0 {
			t.Fatalf("keys taken out of order: %v", keys)
		}
	}
}
