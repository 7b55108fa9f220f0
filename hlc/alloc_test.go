//go:build !race

// Allocation counts are only meaningful without the race detector, which
// allocates on its own; `make test` runs these in a separate pass without it.

package hlc

import "testing"

func TestNowAllocatesNothing(t *testing.T) {
	c, err := New(t.Context(), Config{Node: "scheduler-east-1", Wall: NewManualClock(1704067200000)})
	if err != nil {
		t.Fatal(err)
	}
	var buf [MaxTextLen]byte
	allocs := testing.AllocsPerRun(1000, func() {
		ts, err := c.Now()
		if err != nil {
			t.Fatal(err)
		}
		_ = ts.AppendText(buf[:0])
	})
	if allocs != 0 {
		t.Fatalf("Now + AppendText allocate %v times per call, want 0", allocs)
	}
}
