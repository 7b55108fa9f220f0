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

func TestChecksAllocateNothing(t *testing.T) {
	payload := []byte(`{"b": 1, "a": [true, null]}`) // not canonical: the slow path
	ph, err := PayloadHash(payload)
	if err != nil {
		t.Fatal(err)
	}
	link, err := Link(testPrev, testJobID, testTHLC, ph)
	if err != nil {
		t.Fatal(err)
	}
	s := Stored{JobID: testJobID, THLC: []byte(testTHLC), PayloadHash: ph, PrevLink: testPrev, Link: link}
	prev := Previous{Exists: true, Link: testPrev, THLC: []byte("0000000000001-000000-a")}
	var c Canonicalizer
	_, _ = c.CheckEntry(&s, payload) // grow c's buffer once
	allocs := testing.AllocsPerRun(100, func() {
		if f, _ := c.CheckEntry(&s, payload); f != 0 {
			t.Fatalf("faults %b on a good entry", f)
		}
		if f := CheckSuccession(&s, false, prev); f != 0 {
			t.Fatalf("faults %b on a good succession", f)
		}
	})
	if allocs != 0 {
		t.Fatalf("CheckEntry and CheckSuccession allocate %v times per entry, want 0", allocs)
	}
}
