package chain

import (
	"crypto/sha256"
	"testing"
)

// CheckEntry's payload check agrees with PayloadHash on canonical and
// non-canonical spellings, refuses a foreign hash, and says why invalid
// JSON cannot match.
func TestCheckEntryPayload(t *testing.T) {
	var c Canonicalizer
	for _, in := range []string{`{}`, `{"b":1,"a":2}`, `  {"x" : 1 }  `, `{"a":"\u00e9"}`, `[1.5,1e3]`, `"plain"`} {
		want, err := PayloadHash([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		s := goodEntry(t, want)
		if f, err := c.CheckEntry(&s, []byte(in)); f != 0 || err != nil {
			t.Errorf("%q: CheckEntry = %b, %v; want no fault", in, f, err)
		}
		s.PayloadHash = sha256.Sum256([]byte("other"))
		if f, _ := c.CheckEntry(&s, []byte(in)); !f.Has(FaultPayloadHash) {
			t.Errorf("%q: matches a foreign hash", in)
		}
	}
	s := goodEntry(t, Hash{})
	if f, err := c.CheckEntry(&s, []byte(`{"a":`)); !f.Has(FaultPayloadHash) || err == nil {
		t.Errorf("invalid JSON: faults %b, error %v; want FaultPayloadHash and the reason", f, err)
	}
}

// A link that is not the link of the entry's fields, and a t_hlc that
// cannot be linked, are FaultLink; nothing else is.
func TestCheckEntryLink(t *testing.T) {
	ph, _ := PayloadHash([]byte(`{}`))
	for name, mod := range map[string]func(*Stored){
		"link changed":      func(s *Stored) { s.Link[0] ^= 1 },
		"prev_link changed": func(s *Stored) { s.PrevLink[0] ^= 1 },
		"job id changed":    func(s *Stored) { s.JobID[0] ^= 1 },
		"t_hlc changed":     func(s *Stored) { s.THLC = []byte("0000000000009-000000-a") },
		"empty t_hlc":       func(s *Stored) { s.THLC = nil },
		"t_hlc too long":    func(s *Stored) { s.THLC = make([]byte, maxTHLCLen+1) },
	} {
		s := goodEntry(t, ph)
		mod(&s)
		if f, err := CheckEntry(&s, []byte(`{}`)); f != FaultLink || err != nil {
			t.Errorf("%s: faults %b, %v; want FaultLink alone", name, f, err)
		}
	}
}

func TestCheckSuccession(t *testing.T) {
	prevLink := Hash{1}
	prev := Previous{Exists: true, Link: prevLink, THLC: []byte("0000000000001-000000-a")}
	cases := []struct {
		name  string
		s     Stored
		first bool
		prev  Previous
		want  Faults
	}{
		{"genesis", Stored{PrevNull: true, THLC: []byte("0000000000001-000000-a")}, true, Previous{}, 0},
		{"genesis with a prev_link", Stored{PrevLink: prevLink, THLC: []byte("0000000000001-000000-a")}, true, Previous{}, FaultGenesis},
		{"follows", Stored{PrevLink: prevLink, THLC: []byte("0000000000002-000000-a")}, false, prev, 0},
		{"second genesis", Stored{PrevNull: true, THLC: []byte("0000000000002-000000-a")}, false, prev, FaultGenesis},
		{"second genesis, t_hlc back", Stored{PrevNull: true, THLC: []byte("0000000000001-000000-a")}, false, prev, FaultGenesis | FaultTHLCOrder},
		{"wrong prev_link", Stored{PrevLink: Hash{2}, THLC: []byte("0000000000002-000000-a")}, false, prev, FaultPredecessor},
		{"no predecessor", Stored{PrevLink: prevLink, THLC: []byte("0000000000002-000000-a")}, false, Previous{}, FaultPredecessor},
		{"t_hlc equal", Stored{PrevLink: prevLink, THLC: []byte("0000000000001-000000-a")}, false, prev, FaultTHLCOrder},
		{"both", Stored{PrevLink: Hash{2}, THLC: []byte("0000000000000-000000-a")}, false, prev, FaultPredecessor | FaultTHLCOrder},
	}
	for _, c := range cases {
		if got := CheckSuccession(&c.s, c.first, c.prev); got != c.want {
			t.Errorf("%s: faults %b, want %b", c.name, got, c.want)
		}
	}
}

// goodEntry is a stored entry whose link is right for payload hash ph.
func goodEntry(t *testing.T, ph Hash) Stored {
	t.Helper()
	s := Stored{JobID: testJobID, THLC: []byte(testTHLC), PayloadHash: ph, PrevLink: testPrev}
	link, err := Link(s.PrevLink, s.JobID, testTHLC, ph)
	if err != nil {
		t.Fatal(err)
	}
	s.Link = link
	return s
}
