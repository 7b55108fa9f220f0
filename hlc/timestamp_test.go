package hlc

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestCanonicalText(t *testing.T) {
	cases := []struct {
		ts   Timestamp
		text string
	}{
		{Timestamp{1704067200000, 42, "scheduler-east-1"}, "1704067200000-000042-scheduler-east-1"},
		{Timestamp{0, 0, "a"}, "0000000000000-000000-a"},
		{Timestamp{MaxPhysical, MaxLogical, "n.1_x"}, "9999999999999-999999-n.1_x"},
		{Timestamp{5, 7, "Z9"}, "0000000000005-000007-Z9"},
	}
	for _, c := range cases {
		if got := c.ts.String(); got != c.text {
			t.Errorf("%+v.String() = %q, want %q", c.ts, got, c.text)
		}
		back, err := Parse(c.text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.text, err)
		}
		if back != c.ts {
			t.Errorf("Parse(%q) = %+v, want %+v", c.text, back, c.ts)
		}
	}
}

func TestParseRejects(t *testing.T) {
	bad := []string{
		"",
		"1704067200000-000042-",                // no node
		"1704067200000-42-node",                // logical not padded
		"170406720000-000042-node",             // 12-digit physical
		"01704067200000-000042-node",           // 14-digit physical
		"1704067200000:000042:node",            // wrong separators
		"1704067200000-00004x-node",            // non-digit
		"+704067200000-000042-node",            // sign
		"1704067200000-000042--node",           // node starts with dash
		"1704067200000-000042-node with space", // bad node char
		"1704067200000-000042-" + strings.Repeat("n", 65),
		"1704067200000-scheduler-east-1-000042", // upstream form is not canonical
	}
	for _, s := range bad {
		if _, err := Parse(s); !errors.Is(err, ErrInvalidTimestamp) {
			t.Errorf("Parse(%q) error = %v, want ErrInvalidTimestamp", s, err)
		}
	}
}

func TestParseUpstream(t *testing.T) {
	want := Timestamp{1704067200000, 42, "scheduler-east-1"}
	for _, s := range []string{
		"1704067200000-scheduler-east-1-000042",
		"0001704067200000-scheduler-east-1-000042",
		"1704067200000:42:scheduler-east-1",
		"1704067200000-000042-scheduler-east-1",
	} {
		got, err := ParseUpstream(s)
		if err != nil {
			t.Fatalf("ParseUpstream(%q): %v", s, err)
		}
		if got != want {
			t.Errorf("ParseUpstream(%q) = %+v, want %+v", s, got, want)
		}
	}
	for _, s := range []string{
		"", "1704067200000", "1704067200000-node-42", "1704067200000:x:node", "1704067200000:42:",
		"1704067200000:1000000:node", "99999999999999999-node-000001", "-node-000001",
	} {
		if _, err := ParseUpstream(s); !errors.Is(err, ErrInvalidTimestamp) {
			t.Errorf("ParseUpstream(%q) error = %v, want ErrInvalidTimestamp", s, err)
		}
	}
}

func TestNodeIDRules(t *testing.T) {
	for _, ok := range []string{"a", "0", "scheduler-east-1", "host.example_1", strings.Repeat("x", 64)} {
		if err := ValidateNodeID(ok); err != nil {
			t.Errorf("ValidateNodeID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "_a", "a b", "a:b", "ä", "a/b", strings.Repeat("x", 65), "a\x00"} {
		err := ValidateNodeID(bad)
		if !errors.Is(err, ErrInvalidNodeID) {
			t.Errorf("ValidateNodeID(%q) = %v, want ErrInvalidNodeID", bad, err)
		}
	}
}

// The canonical form exists so that databases can order timestamps as
// text; this checks byte order equals Compare on random and edge values.
func TestTextOrderEqualsTimestampOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	nodes := []string{"a", "b", "a-1", "a.1", "A", "z", "node-10", "node-9", "n"}
	var ts []Timestamp
	for range 2000 {
		ts = append(ts, Timestamp{
			Physical: []int64{0, 9, 10, 99, 1704067200000, MaxPhysical, r.Int64N(MaxPhysical + 1)}[r.IntN(7)],
			Logical:  []uint32{0, 9, 10, 42, MaxLogical, uint32(r.IntN(int(MaxLogical) + 1))}[r.IntN(6)],
			Node:     nodes[r.IntN(len(nodes))],
		})
	}
	byCompare := slices.Clone(ts)
	slices.SortStableFunc(byCompare, Timestamp.Compare)
	byText := slices.Clone(ts)
	slices.SortStableFunc(byText, func(a, b Timestamp) int { return strings.Compare(a.String(), b.String()) })
	for i := range byCompare {
		if byCompare[i].Compare(byText[i]) != 0 {
			t.Fatalf("position %d: order by Compare gives %s, order by text gives %s", i, byCompare[i], byText[i])
		}
	}
	for i := 1; i < len(byCompare); i++ {
		a, b := byCompare[i-1], byCompare[i]
		if c := bytes.Compare([]byte(a.String()), []byte(b.String())); c != a.Compare(b) {
			t.Fatalf("%s vs %s: bytes.Compare %d, Compare %d", a, b, c, a.Compare(b))
		}
	}
}

func TestTextMarshaling(t *testing.T) {
	ts := Timestamp{1704067200000, 1, "n1"}
	b, err := ts.MarshalText()
	if err != nil || string(b) != "1704067200000-000001-n1" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var back Timestamp
	if err := back.UnmarshalText(b); err != nil || back != ts {
		t.Fatalf("UnmarshalText = %+v, %v", back, err)
	}
	if _, err := (Timestamp{Physical: -1, Node: "n"}).MarshalText(); !errors.Is(err, ErrInvalidTimestamp) {
		t.Errorf("negative physical marshaled: %v", err)
	}
	if err := back.UnmarshalText([]byte("junk")); err == nil {
		t.Error("UnmarshalText accepted junk")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1704067200000-000042-scheduler-east-1", "0000000000000-000000-a", "1704067200000-scheduler-east-1-000042",
		"1704067200000:42:scheduler-east-1", "", "-", "9999999999999-999999-" + strings.Repeat("z", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := Parse(s)
		if err == nil {
			// Anything accepted is in canonical form: it prints back to itself.
			if ts.String() != s {
				t.Fatalf("Parse(%q) = %+v prints as %q", s, ts, ts.String())
			}
			if verr := ts.Validate(); verr != nil {
				t.Fatalf("Parse(%q) accepted an invalid timestamp: %v", s, verr)
			}
		}
		up, uerr := ParseUpstream(s)
		if uerr == nil {
			if verr := up.Validate(); verr != nil {
				t.Fatalf("ParseUpstream(%q) accepted an invalid timestamp: %v", s, verr)
			}
			if again, err := Parse(up.String()); err != nil || again != up {
				t.Fatalf("ParseUpstream(%q) = %+v does not round-trip: %v", s, up, err)
			}
		}
		if err == nil && (uerr != nil || up != ts) {
			t.Fatalf("ParseUpstream must accept every canonical form: %q", s)
		}
	})
}
