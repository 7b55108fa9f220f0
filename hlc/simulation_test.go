package hlc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// simNode is one participant of the simulation: a clock on a fake wall
// clock whose offset from true time is skewed and jumps around.
type simNode struct {
	name   string
	wall   *ManualClock
	offset int64 // ms, within [-skew, +skew] for honest nodes
	clock  *Clock
	store  *MemoryStore
	vc     []int // vector clock, to know happened-before independently of the HLC
	last   Timestamp
}

type simMessage struct {
	from    int
	ts      Timestamp
	vc      []int
	deliver int64 // true time at which it may be delivered
}

type simEvent struct {
	ts Timestamp
	vc []int
}

// happenedBefore reports whether the event with vector clock a happened
// before the one with b: a <= b componentwise and a != b.
func happenedBefore(a, b []int) bool {
	strictly := false
	for i := range a {
		if a[i] > b[i] {
			return false
		}
		if a[i] < b[i] {
			strictly = true
		}
	}
	return strictly
}

// TestSimulation runs nodes with skewed, jumping wall clocks that tick,
// send and receive messages (and sometimes restart), and checks the paper's
// properties on every event:
//   - happened-before implies timestamp order (checked against vector
//     clocks, for every pair within a sliding window of events);
//   - 0 <= l - pt <= epsilon, epsilon being the largest offset between two
//     honest wall clocks (2 * skew), plus the reserve once a node restarted;
//   - a restarted node, its wall clock anywhere, issues only timestamps
//     above those it issued before;
//   - a rogue node whose clock runs beyond MaxDrift is refused and never
//     drags an honest clock forward.
func TestSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { simulate(t, seed) })
	}
}

func simulate(t *testing.T, seed uint64) {
	const (
		nodes    = 5
		steps    = 20_000
		skew     = 400 // ms: each honest wall clock is within ±skew of true time
		epsilon  = 2 * skew
		maxDrift = 5_000 // ms
		reserve  = 50    // ms
	)
	r := rand.New(rand.NewPCG(seed, seed*7919))
	ctx := context.Background()
	trueTime := int64(1_704_067_200_000)

	newNode := func(i int, store *MemoryStore) *simNode {
		n := &simNode{name: fmt.Sprintf("node-%d", i), offset: r.Int64N(2*skew+1) - skew, store: store}
		n.wall = NewManualClock(trueTime + n.offset)
		c, err := New(ctx, Config{Node: n.name, Wall: n.wall, Store: store, MaxDrift: maxDrift * time.Millisecond, Reserve: reserve * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		n.clock, n.vc = c, make([]int, nodes+1)
		return n
	}
	sim := make([]*simNode, nodes)
	for i := range sim {
		sim[i] = newNode(i, NewMemoryStore())
	}
	// The rogue node's wall clock is ten minutes fast.
	rogueWall := NewManualClock(trueTime + 600_000)
	rogue, err := New(ctx, Config{Node: "rogue", Wall: rogueWall})
	if err != nil {
		t.Fatal(err)
	}

	var inFlight []simMessage
	var window []simEvent // recent events, for the pairwise happened-before check
	refusals := 0
	// A restart resumes above the persisted bound, which may be up to the
	// reserve ahead; from the first restart on, that slack propagates.
	bound := int64(epsilon)

	record := func(n *simNode, i int, ts Timestamp) {
		t.Helper()
		if !ts.After(n.last) {
			t.Fatalf("%s issued %s, not after its previous %s", n.name, ts, n.last)
		}
		n.last = ts
		pt := n.wall.UnixMilli()
		if d := ts.Physical - pt; d < 0 || d > bound {
			t.Fatalf("%s: l - pt = %d ms, want within [0, %d]", n.name, d, bound)
		}
		n.vc[i]++
		ev := simEvent{ts: ts, vc: append([]int(nil), n.vc...)}
		for _, e := range window {
			if happenedBefore(e.vc, ev.vc) && !e.ts.Before(ev.ts) {
				t.Fatalf("event %s happened before %s but does not sort before it", e.ts, ev.ts)
			}
			if happenedBefore(ev.vc, e.vc) {
				t.Fatalf("vector clocks out of order")
			}
		}
		window = append(window, ev)
		if len(window) > 300 {
			window = window[1:]
		}
	}

	for range steps {
		trueTime += r.Int64N(3) // 0 to 2 ms per step: many events share a millisecond
		i := r.IntN(nodes)
		n := sim[i]
		if r.IntN(200) == 0 { // the wall clock jumps, possibly backwards
			n.offset = r.Int64N(2*skew+1) - skew
		}
		n.wall.Set(trueTime + n.offset)

		switch k := r.IntN(100); {
		case k < 2: // restart from the store, its wall clock moved within the skew
			last, vc := n.last, n.vc
			restarted := newNode(i, n.store)
			restarted.vc, restarted.last = vc, last
			sim[i] = restarted
			bound = epsilon + reserve
			// A restart itself is not an event; the next tick is checked
			// against the last timestamp issued before it.
		case k < 35: // local event
			record(n, i, mustNow(t, n.clock))
		case k < 65: // send
			ts := mustNow(t, n.clock)
			record(n, i, ts)
			inFlight = append(inFlight, simMessage{from: i, ts: ts, vc: append([]int(nil), n.vc...), deliver: trueTime + r.Int64N(50)})
		default: // receive a deliverable message, if any
			j := -1
			for idx, m := range inFlight {
				if m.deliver <= trueTime {
					j = idx
					break
				}
			}
			if r.IntN(20) == 0 { // sometimes the rogue speaks
				rogueWall.Set(trueTime + 600_000)
				rts, err := rogue.Now()
				if err != nil {
					t.Fatal(err)
				}
				before := n.clock.Current()
				_, err = n.clock.Receive(rts)
				var de *DriftError
				if !errors.As(err, &de) {
					t.Fatalf("%s accepted rogue timestamp %s: err = %v", n.name, rts, err)
				}
				if n.clock.Current() != before {
					t.Fatalf("%s moved on a refused receive", n.name)
				}
				refusals++
				continue
			}
			if j < 0 {
				continue
			}
			m := inFlight[j]
			inFlight = append(inFlight[:j], inFlight[j+1:]...)
			for x := range n.vc {
				n.vc[x] = max(n.vc[x], m.vc[x])
			}
			ts, err := n.clock.Receive(m.ts)
			if err != nil {
				t.Fatalf("%s refused %s from an honest node: %v", n.name, m.ts, err)
			}
			if !ts.After(m.ts) {
				t.Fatalf("receive result %s not after message %s", ts, m.ts)
			}
			record(n, i, ts)
		}
	}
	if refusals == 0 {
		t.Fatal("the rogue node never spoke; the simulation did not test drift refusal")
	}
}
