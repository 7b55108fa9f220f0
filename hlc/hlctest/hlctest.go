// Package hlctest is the conformance suite every hlc.StateStore must pass,
// so the in-memory, PostgreSQL and SQLite stores are held to one contract;
// and ManualClock, the clock of other packages' tests, whose time passes
// only when the test moves it.
package hlctest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/hlc"
)

// TestStateStore runs the suite against the store open returns. open is
// called once per subtest and must return a store that shares nothing with
// earlier calls except what the subtest itself wrote through it.
func TestStateStore(t *testing.T, open func(t *testing.T) hlc.StateStore) {
	ctx := context.Background()

	t.Run("unknown node loads zero", func(t *testing.T) {
		s := open(t)
		got, err := s.Load(ctx, "never-saved")
		if err != nil || got != 0 {
			t.Fatalf("Load of unknown node = %d, %v; want 0, nil", got, err)
		}
	})

	t.Run("save then load, per node", func(t *testing.T) {
		s := open(t)
		if err := s.Save(ctx, "a", 1000); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, "b", 2000); err != nil {
			t.Fatal(err)
		}
		for node, want := range map[string]int64{"a": 1000, "b": 2000} {
			if got, err := s.Load(ctx, node); err != nil || got != want {
				t.Fatalf("Load(%s) = %d, %v; want %d", node, got, err, want)
			}
		}
	})

	t.Run("never lowers", func(t *testing.T) {
		s := open(t)
		for _, b := range []int64{5000, 3000, 4999} {
			if err := s.Save(ctx, "n", b); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := s.Load(ctx, "n"); got != 5000 {
			t.Fatalf("after saving 5000 then lower values, Load = %d, want 5000", got)
		}
	})

	t.Run("concurrent saves keep the maximum", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() { errs <- s.Save(ctx, "n", int64(1000+i*37%40)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := s.Load(ctx, "n"); got != 1039 {
			t.Fatalf("Load = %d after concurrent saves, want the maximum 1039", got)
		}
	})

	t.Run("restarted clock never reissues", func(t *testing.T) {
		s := open(t)
		// On a store whose bound is written with the data the clock never writes: its owner stores the
		// bound with each timestamp, which the loop below does in its place.
		withData := s.BoundWrittenWithData()
		wall := hlc.NewManualClock(1_704_067_200_000)
		var last hlc.Timestamp
		for restart := range 3 {
			c, err := hlc.New(ctx, hlc.Config{Node: "node-1", Wall: wall, Store: s, Reserve: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 500 {
				if i%50 == 0 {
					wall.Advance(7 * time.Millisecond)
				}
				ts, err := c.Now()
				if err != nil {
					t.Fatal(err)
				}
				if !ts.After(last) {
					t.Fatalf("after %d restarts: issued %s, not after %s", restart, ts, last)
				}
				last = ts
				if withData {
					if err := s.Save(ctx, "node-1", ts.Physical+1); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The next incarnation's wall clock is an hour behind.
			wall.Advance(-time.Hour)
		}
	})
}

// ManualClock starts a clock configured by cfg on a manual wall clock at
// wallMs (Unix ms), which it returns for the test to move; it fails the
// test if the clock does not start (its state store failing).
func ManualClock(t testing.TB, wallMs int64, cfg hlc.Config) (*hlc.Clock, *hlc.ManualClock) {
	t.Helper()
	wall := hlc.NewManualClock(wallMs)
	cfg.Wall = wall
	clock, err := hlc.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return clock, wall
}
