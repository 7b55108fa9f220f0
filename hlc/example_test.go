package hlc_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/hlc"
)

// A clock issues timestamps that only move forward, even when the wall
// clock jumps back.
func ExampleClock_Now() {
	wall := hlc.NewManualClock(1704067200000) // a fake wall clock for the example
	clock, err := hlc.New(context.Background(), hlc.Config{Node: "scheduler-east-1", Wall: wall})
	if err != nil {
		panic(err)
	}
	a, _ := clock.Now()
	b, _ := clock.Now()
	wall.Advance(-time.Second)
	c, _ := clock.Now()
	fmt.Println(a)
	fmt.Println(b)
	fmt.Println(c)
	// Output:
	// 1704067200000-000000-scheduler-east-1
	// 1704067200000-000001-scheduler-east-1
	// 1704067200000-000002-scheduler-east-1
}

// Receive merges a timestamp from another node: the result sorts after both.
// A timestamp too far in the future is refused.
func ExampleClock_Receive() {
	wall := hlc.NewManualClock(1704067200000)
	clock, _ := hlc.New(context.Background(), hlc.Config{Node: "east", Wall: wall, MaxDrift: time.Minute})

	remote := hlc.Timestamp{Physical: 1704067200500, Logical: 3, Node: "west"}
	ts, _ := clock.Receive(remote)
	fmt.Println(ts, ts.After(remote))

	_, err := clock.Receive(hlc.Timestamp{Physical: 1704067200000 + 10*60*1000, Node: "skewed"})
	fmt.Println(errors.Is(err, hlc.ErrClockDrift))
	fmt.Println(err)
	// Output:
	// 1704067200500-000004-east true
	// true
	// hlc: remote timestamp 1704067800000-000000-skewed is 600000 ms ahead of the local wall clock; at most 60000 ms allowed (MaxClockDriftMs)
}

// Upstream systems wrote timestamps in forms that do not sort as text;
// ParseUpstream reads them for imports, String writes the canonical form.
func ExampleParseUpstream() {
	for _, s := range []string{"1704067200000-scheduler-east-1-000042", "1704067200000:42:scheduler-east-1"} {
		ts, err := hlc.ParseUpstream(s)
		if err != nil {
			panic(err)
		}
		fmt.Println(ts)
	}
	// Output:
	// 1704067200000-000042-scheduler-east-1
	// 1704067200000-000042-scheduler-east-1
}
