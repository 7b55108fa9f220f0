package hlc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func newTestClock(t *testing.T, node string, wall WallClock, store StateStore) *Clock {
	t.Helper()
	c, err := New(context.Background(), Config{Node: node, Wall: wall, Store: store})
	if err != nil {
		t.Fatalf("New(%s): %v", node, err)
	}
	return c
}

func mustNow(t *testing.T, c *Clock) Timestamp {
	t.Helper()
	ts, err := c.Now()
	if err != nil {
		t.Fatalf("Now: %v", err)
	}
	return ts
}

func TestNowFollowsWallClockAndCounts(t *testing.T) {
	wall := NewManualClock(1_000_000)
	c := newTestClock(t, "n1", wall, nil)

	if got := mustNow(t, c); got != (Timestamp{1_000_000, 0, "n1"}) {
		t.Fatalf("first tick = %s", got)
	}
	if got := mustNow(t, c); got != (Timestamp{1_000_000, 1, "n1"}) {
		t.Fatalf("same millisecond = %s, want counter 1", got)
	}
	wall.Advance(5 * time.Millisecond)
	if got := mustNow(t, c); got != (Timestamp{1_000_005, 0, "n1"}) {
		t.Fatalf("after wall moved = %s, want counter reset", got)
	}
	wall.Advance(-time.Second) // wall clock jumps back: HLC must not
	if got := mustNow(t, c); got != (Timestamp{1_000_005, 1, "n1"}) {
		t.Fatalf("after wall went back = %s", got)
	}
	if cur := c.Current(); cur != (Timestamp{1_000_005, 1, "n1"}) {
		t.Fatalf("Current = %s", cur)
	}
}

func TestLogicalOverflowMovesPhysicalForward(t *testing.T) {
	wall := NewManualClock(1_000_000)
	c := newTestClock(t, "n1", wall, nil)
	r, err := c.Receive(Timestamp{1_000_000, MaxLogical - 1, "peer"})
	if err != nil {
		t.Fatal(err)
	}
	if r != (Timestamp{1_000_000, MaxLogical, "n1"}) {
		t.Fatalf("receive = %s, want counter %d", r, MaxLogical)
	}
	got := mustNow(t, c)
	if got != (Timestamp{1_000_001, 0, "n1"}) {
		t.Fatalf("overflowing tick = %s, want physical+1 and counter 0", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	// Receiving a remote at the counter's limit also overflows cleanly.
	r, err = c.Receive(Timestamp{1_000_001, MaxLogical, "peer"})
	if err != nil {
		t.Fatal(err)
	}
	if r != (Timestamp{1_000_002, 0, "n1"}) {
		t.Fatalf("receive at counter limit = %s", r)
	}
}

func TestReceiveRules(t *testing.T) {
	cases := []struct {
		name   string
		wall   int64
		local  Timestamp // state established before the receive
		remote Timestamp
		want   Timestamp
	}{
		{"wall ahead of both", 2000, Timestamp{1000, 3, "n1"}, Timestamp{1500, 9, "p"}, Timestamp{2000, 0, "n1"}},
		{"remote ahead", 1000, Timestamp{1000, 3, "n1"}, Timestamp{1500, 9, "p"}, Timestamp{1500, 10, "n1"}},
		{"local ahead", 1000, Timestamp{1800, 3, "n1"}, Timestamp{1500, 9, "p"}, Timestamp{1800, 4, "n1"}},
		{"local equals remote", 1000, Timestamp{1500, 3, "n1"}, Timestamp{1500, 9, "p"}, Timestamp{1500, 10, "n1"}},
		{"local equals remote, local counter larger", 1000, Timestamp{1500, 12, "n1"}, Timestamp{1500, 9, "p"}, Timestamp{1500, 13, "n1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wall := NewManualClock(tc.local.Physical)
			c := newTestClock(t, "n1", wall, nil)
			// Bring the clock to tc.local: receive a remote equal to it
			// minus one count, from a node that sorts first.
			if _, err := c.Receive(Timestamp{tc.local.Physical, tc.local.Logical - 1, "a"}); tc.local.Logical > 0 && err != nil {
				t.Fatal(err)
			}
			if c.Current() != tc.local {
				t.Fatalf("setup: Current = %s, want %s", c.Current(), tc.local)
			}
			wall.Set(tc.wall)
			got, err := c.Receive(tc.remote)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Receive(%s) = %s, want %s", tc.remote, got, tc.want)
			}
			if !got.After(tc.remote) || !got.After(tc.local) {
				t.Fatalf("Receive result %s not after both local %s and remote %s", got, tc.local, tc.remote)
			}
		})
	}
}

func TestReceiveRefusesDriftAndLeavesClockUnchanged(t *testing.T) {
	wall := NewManualClock(1_000_000)
	c, err := New(context.Background(), Config{Node: "n1", Wall: wall, MaxDrift: 60 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := mustNow(t, c)

	// Exactly at the limit is accepted.
	if _, err := c.Receive(Timestamp{1_000_000 + 60_000, 0, "p"}); err != nil {
		t.Fatalf("remote exactly MaxDrift ahead refused: %v", err)
	}
	c2 := newTestClock(t, "n2", wall, nil)
	before = mustNow(t, c2)
	_, err = c2.Receive(Timestamp{1_000_000 + 60_001, 0, "p"})
	var de *DriftError
	if !errors.As(err, &de) || !errors.Is(err, ErrClockDrift) {
		t.Fatalf("Receive of a remote 60001 ms ahead: err = %v, want *DriftError", err)
	}
	if de.Observed != 60_001*time.Millisecond || de.Allowed != 60*time.Second {
		t.Fatalf("DriftError observed %v allowed %v", de.Observed, de.Allowed)
	}
	if c2.Current() != before {
		t.Fatalf("clock moved on a refused receive: %s -> %s", before, c2.Current())
	}
	if got := mustNow(t, c2); got != (Timestamp{before.Physical, before.Logical + 1, "n2"}) {
		t.Fatalf("tick after refusal = %s", got)
	}
}

func TestReceiveRejectsInvalidRemote(t *testing.T) {
	c := newTestClock(t, "n1", NewManualClock(1000), nil)
	for _, r := range []Timestamp{{1000, 0, ""}, {1000, MaxLogical + 1, "p"}, {-1, 0, "p"}, {1000, 0, "bad node"}} {
		if _, err := c.Receive(r); !errors.Is(err, ErrInvalidTimestamp) {
			t.Errorf("Receive(%+v) err = %v, want ErrInvalidTimestamp", r, err)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := New(ctx, Config{Node: "bad node"}); !errors.Is(err, ErrInvalidNodeID) {
		t.Errorf("bad node id: %v", err)
	}
	if _, err := New(ctx, Config{Node: "n", MaxDrift: -time.Second}); err == nil {
		t.Error("negative MaxDrift accepted")
	}
	if _, err := New(ctx, Config{Node: "n", Reserve: -time.Second}); err == nil {
		t.Error("negative Reserve accepted")
	}
	closed := NewMemoryStore()
	closed.Close()
	if _, err := New(ctx, Config{Node: "n", Store: closed}); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("closed store: %v", err)
	}
}

// The restart rule: a clock recreated from its store, with its wall clock
// set far back, issues only timestamps above everything issued before.
func TestRestartNeverReissues(t *testing.T) {
	store := NewMemoryStore()
	wall := NewManualClock(5_000_000)
	c := newTestClock(t, "n1", wall, store)
	var last Timestamp
	for i := range 10_000 {
		if i%100 == 0 {
			wall.Advance(time.Millisecond)
		}
		last = mustNow(t, c)
	}
	saves := store.Saves()
	// 10,000 ticks over 100 ms of wall time must not write per tick.
	if saves > 2 {
		t.Fatalf("%d store writes for 10,000 ticks within one reserve window; want at most 2", saves)
	}

	wall.Set(1_000) // the machine comes back with its clock hours behind
	restarted := newTestClock(t, "n1", wall, store)
	first := mustNow(t, restarted)
	if !first.After(last) {
		t.Fatalf("restarted clock issued %s, not after %s issued before the restart", first, last)
	}
	if first.Physical-last.Physical > DefaultReserve.Milliseconds() {
		t.Fatalf("restarted clock jumped %d ms ahead, more than the reserve", first.Physical-last.Physical)
	}
}

func TestStoreFailureIssuesNothing(t *testing.T) {
	store := NewMemoryStore()
	wall := NewManualClock(1_000_000)
	c := newTestClock(t, "n1", wall, store)
	mustNow(t, c)
	store.Close()
	// Within the reserved window ticks still succeed without the store.
	mustNow(t, c)
	before := c.Current()
	wall.Advance(time.Hour) // beyond the reserve: a write is needed
	if _, err := c.Now(); !errors.Is(err, ErrStoreClosed) {
		t.Fatalf("Now with failed store: %v, want ErrStoreClosed", err)
	}
	if c.Current() != before {
		t.Fatalf("clock advanced to %s although the bound could not be persisted", c.Current())
	}
}

func TestConcurrentNowIsUniqueAndMonotonicPerGoroutine(t *testing.T) {
	wall := NewManualClock(1_000_000)
	c := newTestClock(t, "n1", wall, nil)
	const goroutines, each = 8, 5000
	results := make([][]Timestamp, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if g == 0 && i%500 == 0 {
					wall.Advance(time.Millisecond)
				}
				ts, err := c.Now()
				if err != nil {
					t.Error(err)
					return
				}
				results[g] = append(results[g], ts)
			}
		})
	}
	wg.Wait()
	seen := map[Timestamp]bool{}
	for _, rs := range results {
		for i, ts := range rs {
			if seen[ts] {
				t.Fatalf("timestamp %s issued twice", ts)
			}
			seen[ts] = true
			if i > 0 && !ts.After(rs[i-1]) {
				t.Fatalf("goroutine saw %s after %s", ts, rs[i-1])
			}
		}
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d distinct timestamps, want %d", len(seen), goroutines*each)
	}
}

// dataBoundStore is a MemoryStore whose owner writes bounds with its data.
type dataBoundStore struct{ *MemoryStore }

func (dataBoundStore) BoundWrittenWithData() bool { return true }

// A clock on a store whose bound is written with the data must never write (its caller may hold the
// only write lock), and must still start above the bound its owner wrote.
func TestDataBoundStoreIsNeverWrittenByTheClock(t *testing.T) {
	store := dataBoundStore{NewMemoryStore()}
	wall := NewManualClock(1_000_000)
	c := newTestClock(t, "n1", wall, store)
	var last Timestamp
	for range 100 {
		wall.Advance(time.Hour)
		last = mustNow(t, c)
	}
	if store.Saves() != 0 {
		t.Fatalf("clock wrote %d times to a store whose owner writes bounds", store.Saves())
	}
	// The owner stored `last` and its bound in one transaction.
	if err := store.Save(context.Background(), "n1", last.Physical+1); err != nil {
		t.Fatal(err)
	}
	wall.Set(0)
	restarted := newTestClock(t, "n1", wall, store)
	if first := mustNow(t, restarted); !first.After(last) {
		t.Fatalf("restarted clock issued %s, not after the stored %s", first, last)
	}
}
