package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/queue"
)

var canonCorpus = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-1`, `123456789012345`, `1234567890123456`, `-0`, `1.5`, `1e3`, `01`,
	`{"b":1,"a":2}`, `{"a": [1, 2, {"d": null, "c": "x"}], "b": {"z": true, "y": false}}`,
	`{"a":1,"a":2}`, `{"a":"\u00e9"}`, `{"é":1,"e":2}`, `{"\ud83d\ude00":1,"\ufb33":2}`, `{"😀":1,"דּ":2}`,
	`"plain"`, `"tab\there"`, "\"ctl\x01\"", `  {"x" : 1 }  `, `{"x":1} x`, `{"x":}`, `[1,]`, `{"aa":1,"a":2,"b":{"bb":1,"b":[3]}}`,
	`{"to":"bob@example.com","subject":"Welcome to ordo","template":"welcome","attempt":1}`, "\"\xff\"", `{"a":nul}`, `[[[[]]]]`,
}

// TestCanonicalizerAgreesWithReference: wherever the fast path answers, it
// answers what chain.Canonicalize does.
func TestCanonicalizerAgreesWithReference(t *testing.T) {
	var c canonicalizer
	fast := 0
	for _, in := range canonCorpus {
		got, ok := c.canonical([]byte(in))
		want, err := chain.Canonicalize([]byte(in))
		if ok {
			fast++
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%q: fast path %q, reference %q (%v)", in, got, want, err)
			}
		}
		// payloadHashMatches agrees with the reference either way.
		if err == nil {
			if ok, err2 := c.payloadHashMatches([]byte(in), sha256.Sum256(want)); !ok || err2 != nil {
				t.Errorf("%q: payloadHashMatches = %v, %v", in, ok, err2)
			}
			if ok, _ := c.payloadHashMatches([]byte(in), sha256.Sum256([]byte("other"))); ok {
				t.Errorf("%q: matches a foreign hash", in)
			}
		}
	}
	if fast < 10 {
		t.Errorf("fast path took only %d of the corpus", fast)
	}
}

func FuzzCanonicalizer(f *testing.F) {
	for _, in := range canonCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c canonicalizer
		got, ok := c.canonical(in)
		if !ok {
			return
		}
		want, err := chain.Canonicalize(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%q: fast path %q, reference %q (%v)", in, got, want, err)
		}
	})
}

// TestTreeBuilderMatchesTlog: the streaming root equals tlog.TreeHash over
// stored hashes at every size.
func TestTreeBuilderMatchesTlog(t *testing.T) {
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var b treeBuilder
	for n := int64(0); n < 300; n++ {
		link := chain.Hash(sha256.Sum256([]byte(fmt.Sprint(n))))
		hs, err := tlog.StoredHashesForRecordHash(n, LeafHash(link), r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		b.add(LeafHash(link))
		want, err := tlog.TreeHash(n+1, r)
		if err != nil || b.root() != want {
			t.Fatalf("size %d: root %x, tlog %x (%v)", n+1, b.root(), want, err)
		}
	}
}

// TestJobIDCheckMatchesChain: the verifier's allocation-free job id is
// chain.JobID's.
func TestJobIDCheckMatchesChain(t *testing.T) {
	k := queue.ChainKey{TenantID: "acme", PartitionKey: "Zürich"}
	for _, key := range []string{"", "order-1"} {
		ph := chain.Hash(sha256.Sum256([]byte(key + "x")))
		id, err := chain.JobID(k.TenantID, k.PartitionKey, "email.send", key, ph)
		if err != nil {
			t.Fatal(err)
		}
		b := &batch{recs: make([]rec, 1)}
		r := &b.recs[0]
		r.kind, r.key, r.hasKey, r.payloadHash, r.jobID = b.put([]byte("email.send")), b.put([]byte(key)), key != "", ph, id
		w := newEntryChecker(k, true)
		w.b, w.i = b, 0
		w.checkJobID(b, r)
		if len(b.probs) != 0 {
			t.Fatalf("key %q: %v", key, b.probs)
		}
		r.jobID = uuid.New()
		w.checkJobID(b, r)
		if len(b.probs) != 1 || b.probs[0].typ != IssueJobIDMismatch {
			t.Fatalf("key %q, foreign id: %v", key, b.probs)
		}
	}
}

func TestCanonicalTHLC(t *testing.T) {
	for in, ok := range map[string]bool{
		"1704067200000-000042-scheduler-east-1": true, "1704067200000-000042-": false, "1704067200000:000042:n": false,
		"170406720000-0000042-n": false, "1704067200000-000042-.n": false, "1704067200000-000042-n_1.x": true,
	} {
		if got := canonicalTHLC([]byte(in)) == ""; got != ok {
			t.Errorf("%q: canonical = %v, want %v", in, got, ok)
		}
	}
}

func TestOriginRoundTrip(t *testing.T) {
	for _, k := range []queue.ChainKey{{TenantID: "acme"}, {TenantID: "a.b-c", PartitionKey: "eu/west/1 x"}} {
		got, err := ParseOrigin(Origin(k))
		if err != nil || got != k {
			t.Errorf("%v: %v, %v", k, got, err)
		}
	}
	for _, bad := range []string{"ordo/", "ordo/acme", "other/acme/", "ordo/ac me/"} {
		if _, err := ParseOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
