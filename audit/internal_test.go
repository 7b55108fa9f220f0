package audit

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

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
	k := chain.Key{TenantID: "acme", PartitionKey: "Zürich"}
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
	for _, k := range []chain.Key{{TenantID: "acme"}, {TenantID: "a.b-c", PartitionKey: "eu/west/1 x"}, {TenantID: "t", PartitionKey: "a+b%c Zürich"},
		{TenantID: "t", PartitionKey: "%41"}} {
		for _, o := range []string{Origin(k), LegacyOrigin(k)} {
			got, err := ParseOrigin(o)
			if err != nil || got != k {
				t.Errorf("%v from %q: %v, %v", k, o, got, err)
			}
		}
		// C2SP tlog-checkpoint: no Unicode space and no "+".
		if o := Origin(k); strings.ContainsAny(o, " +") || strings.ContainsFunc(o, unicode.IsSpace) || !OriginOf(o, k) || !OriginOf(LegacyOrigin(k), k) {
			t.Errorf("%v: origin %q", k, o)
		}
	}
	if o := Origin(chain.Key{TenantID: "t", PartitionKey: "a+b%c Zürich"}); o != "ordo/t/a%2Bb%25c%20Z%C3%BCrich" {
		t.Errorf("escaped origin %q", o)
	}
	// "a%20b" verbatim is the escaped origin of "a b": it names "a b" only.
	spaced, literal := chain.Key{TenantID: "t", PartitionKey: "a b"}, chain.Key{TenantID: "t", PartitionKey: "a%20b"}
	if o := LegacyOrigin(literal); !OriginOf(o, spaced) || OriginOf(o, literal) {
		t.Errorf("%q names %v: %v, %v: %v", o, spaced, OriginOf(o, spaced), literal, OriginOf(o, literal))
	}
	if o := Origin(chain.Key{TenantID: "t", PartitionKey: "eu/west-1_a.b~c"}); o != "ordo/t/eu/west-1_a.b~c" {
		t.Errorf("a key of path characters is not itself: %q", o)
	}
	for _, bad := range []string{"ordo/", "ordo/acme", "other/acme/", "ordo/ac me/"} {
		if _, err := ParseOrigin(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// treeWalker computes exactly the hashes tlog stores, leaf by leaf.
func TestTreeWalkerMatchesTlogStoredHashes(t *testing.T) {
	var w treeWalker
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for n := int64(0); n < 300; n++ {
		data := []byte{byte(n), byte(n >> 8)}
		want, err := tlog.StoredHashes(n, data, reader)
		if err != nil {
			t.Fatal(err)
		}
		got := w.add(tlog.RecordHash(data), nil)
		if len(got) != len(want) {
			t.Fatalf("leaf %d: %d hashes, tlog stores %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i].index != int64(len(stored)+i) || got[i].hash != want[i] {
				t.Fatalf("leaf %d, hash %d: index %d, want %d; equal %v", n, i, got[i].index, len(stored)+i, got[i].hash == want[i])
			}
		}
		stored = append(stored, want...)
	}
}
