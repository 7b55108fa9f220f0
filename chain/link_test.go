package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

var (
	testJobID = uuid.MustParse("c425f8ae-4aea-54b7-9575-1881a4842a8b")
	testTHLC  = "1704067200000-000001-scheduler-east-1"
	testHash  = Hash{1, 2, 3}
	testPrev  = Hash{9, 8, 7}
)

func TestLinkCoversEveryField(t *testing.T) {
	base, err := Link(testPrev, testJobID, testTHLC, testHash)
	if err != nil {
		t.Fatal(err)
	}
	otherID := testJobID
	otherID[15] ^= 1
	for name, args := range map[string]struct {
		prev Hash
		id   uuid.UUID
		thlc string
		ph   Hash
	}{
		"genesis":      {Hash{}, testJobID, testTHLC, testHash},
		"prev":         {Hash{9, 8, 6}, testJobID, testTHLC, testHash},
		"job id":       {testPrev, otherID, testTHLC, testHash},
		"t_hlc":        {testPrev, testJobID, "1704067200000-000002-scheduler-east-1", testHash},
		"payload hash": {testPrev, testJobID, testTHLC, Hash{1, 2, 4}},
	} {
		got, err := Link(args.prev, args.id, args.thlc, args.ph)
		if err != nil {
			t.Fatal(err)
		}
		if got == base {
			t.Errorf("changing the %s left the link unchanged", name)
		}
	}
}

func TestLinkRefusesBadTHLC(t *testing.T) {
	for _, thlc := range []string{"", strings.Repeat("9", 86)} {
		if _, err := Link(testPrev, testJobID, thlc, testHash); !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), "t_hlc") {
			t.Errorf("Link with t_hlc of %d bytes: got %v, want ErrInvalidID naming t_hlc", len(thlc), err)
		}
	}
	if _, err := Link(testPrev, testJobID, strings.Repeat("9", 85), testHash); err != nil {
		t.Errorf("Link with an 85-byte t_hlc: %v", err)
	}
}

func TestEntryComputeLink(t *testing.T) {
	e := Entry{TenantID: "acme", THLC: testTHLC, JobID: testJobID, PayloadHash: testHash, PrevLink: testPrev}
	got, err := e.ComputeLink()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Link(testPrev, testJobID, testTHLC, testHash)
	if got != want {
		t.Fatalf("ComputeLink %s, Link %s", got, want)
	}
}

func TestHashForms(t *testing.T) {
	h := Hash{0xab, 0xcd}
	s := h.String()
	if s != "abcd"+strings.Repeat("0", 60) {
		t.Fatalf("String() = %s", s)
	}
	for _, in := range []string{s, strings.ToUpper(s)} {
		if got, err := ParseHash(in); err != nil || got != h {
			t.Errorf("ParseHash(%s) = %s, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) accepted", bad)
		}
	}
	if got, err := HashFromBytes(h[:]); err != nil || got != h {
		t.Errorf("HashFromBytes = %s, %v", got, err)
	}
	if _, err := HashFromBytes(h[:31]); err == nil {
		t.Errorf("HashFromBytes accepted 31 bytes")
	}
	if !(Hash{}).IsZero() || h.IsZero() {
		t.Errorf("IsZero wrong")
	}
}
