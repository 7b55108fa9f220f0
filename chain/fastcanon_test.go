package chain

import (
	"bytes"
	"testing"
)

var canonCorpus = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-1`, `123456789012345`, `1234567890123456`, `-0`, `1.5`, `1e3`, `01`,
	`{"b":1,"a":2}`, `{"a": [1, 2, {"d": null, "c": "x"}], "b": {"z": true, "y": false}}`,
	`{"a":1,"a":2}`, `{"a":"\u00e9"}`, `{"é":1,"e":2}`, `{"\ud83d\ude00":1,"\ufb33":2}`, `{"😀":1,"דּ":2}`,
	`"plain"`, `"tab\there"`, "\"ctl\x01\"", `  {"x" : 1 }  `, `{"x":1} x`, `{"x":}`, `[1,]`, `{"aa":1,"a":2,"b":{"bb":1,"b":[3]}}`,
	`{"to":"bob@example.com","subject":"Welcome to ordo","template":"welcome","attempt":1}`, "\"\xff\"", `{"a":nul}`, `[[[[]]]]`,
	`129.95`, `-0.5`, `1e3`, `1E+2`, `2.5e-3`, `0.000001`, `0.0000001`, `1e21`, `123456789012345678901.5`, `-0.0`, `0.1`,
	`1.`, `.5`, `01.5`, `1e`, `1e+`, `-`, `0.30000000000000004`, `5e-324`, `1.7976931348623157e308`, `9007199254740993.0`,
	`{"amount":{"value":129.95,"currency":"EUR"},"ratio":0.25,"big":1.5e20}`,
}

// TestFastPathAgreesWithJCS: wherever the fast path answers, it answers
// what the general implementation does.
func TestFastPathAgreesWithJCS(t *testing.T) {
	var c Canonicalizer
	fast := 0
	for _, in := range canonCorpus {
		got, ok := c.fast([]byte(in))
		want, err := canonicalizeJCS([]byte(in))
		if ok {
			fast++
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%q: fast path %q, reference %q (%v)", in, got, want, err)
			}
		}
		// Canonicalize answers what the general implementation does,
		// fast path or not, refusals included.
		all, err2 := c.Canonicalize([]byte(in))
		if (err == nil) != (err2 == nil) || !bytes.Equal(all, want) {
			t.Errorf("%q: Canonicalize %q (%v), reference %q (%v)", in, all, err2, want, err)
		}
	}
	if fast < 10 {
		t.Errorf("fast path took only %d of the corpus", fast)
	}
}

func FuzzFastPath(f *testing.F) {
	for _, in := range canonCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Canonicalizer
		got, ok := c.fast(in)
		if !ok {
			return
		}
		want, err := canonicalizeJCS(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: fast path %q, reference %q (%v)", in, got, want, err)
		}
	})
}
