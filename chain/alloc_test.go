//go:build !race

// Allocation counts are only meaningful without the race detector, which
// allocates on its own; `make test` runs these in a separate pass without it.

package chain

import "testing"

func TestLinkAllocatesNothing(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = Link(testPrev, testJobID, testTHLC, testHash)
	})
	if allocs != 0 {
		t.Fatalf("Link allocates %v times per call, want 0", allocs)
	}
}
