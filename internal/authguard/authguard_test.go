package authguard_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/internal/authguard"
)

func TestBlocksAfterLimitUntilTheWindowEnds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := authguard.New(3, time.Minute, func() time.Time { return now })
	logged := 0
	for i := range 3 {
		if _, blocked := g.Blocked("10.0.0.1"); blocked {
			t.Fatalf("blocked before failure %d", i+1)
		}
		if g.Fail("10.0.0.1") {
			logged++
		}
	}
	if logged != 2 {
		t.Errorf("%d failures asked to be logged; want the first and the blocking one", logged)
	}
	left, blocked := g.Blocked("10.0.0.1")
	if !blocked || left != time.Minute {
		t.Fatalf("after 3 failures: blocked %v for %v; want blocked for the window", blocked, left)
	}
	if _, blocked := g.Blocked("10.0.0.2"); blocked {
		t.Fatal("another address is blocked")
	}
	now = now.Add(59 * time.Second)
	if left, blocked := g.Blocked("10.0.0.1"); !blocked || left != time.Second {
		t.Fatalf("1 s before the window ends: blocked %v for %v", blocked, left)
	}
	now = now.Add(time.Second)
	if _, blocked := g.Blocked("10.0.0.1"); blocked {
		t.Fatal("still blocked when the window ended")
	}
	if !g.Fail("10.0.0.1") {
		t.Error("the first failure of a new window is not logged")
	}
}

func TestMemoryIsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := authguard.New(5, time.Minute, func() time.Time { return now })
	for i := range authguard.MaxAddresses {
		g.Fail(strconv.Itoa(i))
	}
	// Full, nothing expired: a new address is neither remembered nor
	// blocked (a flood of addresses must not lock out clients that never
	// failed), and the table does not grow.
	for range 10 {
		g.Fail("new")
	}
	if _, blocked := g.Blocked("new"); blocked {
		t.Fatal("a new address is blocked while the table is full")
	}
	if n := g.Len(); n != authguard.MaxAddresses {
		t.Fatalf("the table holds %d addresses; want %d", n, authguard.MaxAddresses)
	}
	// Every window expired: the next failure sweeps them and is counted.
	now = now.Add(time.Minute)
	for range 5 {
		g.Fail("new")
	}
	if _, blocked := g.Blocked("new"); !blocked || g.Len() != 1 {
		t.Fatalf("after the windows expired: blocked %v, %d addresses; want blocked, 1", blocked, g.Len())
	}
}
