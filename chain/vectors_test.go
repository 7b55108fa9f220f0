package chain

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain/internal/vectorfile"
)

const vectorsPath = "../docs/chain-test-vectors.json"

func loadVectors(t testing.TB) vectorfile.File {
	t.Helper()
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorfile.File
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVectors(t *testing.T) {
	f := loadVectors(t)
	if f.Namespace != Namespace.String() {
		t.Fatalf("namespace in file %s, in package %s", f.Namespace, Namespace)
	}
	if len(f.Vectors) < 10 {
		t.Fatalf("%d vectors, want at least 10", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.Description, func(t *testing.T) {
			canonical, err := Canonicalize(v.Payload)
			if err != nil {
				t.Fatalf("Canonicalize: %v", err)
			}
			if string(canonical) != v.CanonicalPayload {
				t.Errorf("canonical payload\n got %s\nwant %s", canonical, v.CanonicalPayload)
			}
			payloadHash, err := PayloadHash(v.Payload)
			if err != nil {
				t.Fatalf("PayloadHash: %v", err)
			}
			if payloadHash.String() != v.PayloadHash {
				t.Errorf("payload_hash %s, want %s", payloadHash, v.PayloadHash)
			}
			key := ""
			if v.IdempotencyKey != nil {
				key = *v.IdempotencyKey
			}
			jobID, err := JobID(v.TenantID, v.PartitionKey, v.Kind, key, payloadHash)
			if err != nil {
				t.Fatalf("JobID: %v", err)
			}
			if jobID.String() != v.JobID {
				t.Errorf("job_id %s, want %s", jobID, v.JobID)
			}
			var prev Hash
			if v.PrevLink != nil {
				if prev, err = ParseHash(*v.PrevLink); err != nil {
					t.Fatal(err)
				}
				if prev.IsZero() {
					t.Errorf("a non-null prev_link must not be all zeros")
				}
			}
			link, err := Link(prev, jobID, v.THLC, payloadHash)
			if err != nil {
				t.Fatalf("Link: %v", err)
			}
			if link.String() != v.Link {
				t.Errorf("link %s, want %s", link, v.Link)
			}

			// The intermediate bytes, rebuilt here by hand from the spec
			// and hashed with the standard library alone.
			nameKey := key
			if nameKey == "" {
				nameKey = v.PayloadHash
			}
			name := []byte(v.TenantID + "\x00" + v.PartitionKey + "\x00" + v.Kind + "\x00" + nameKey)
			if got := hex.EncodeToString(name); got != v.JobIDNameHex {
				t.Errorf("job_id_name_hex\n got %s\nwant %s", got, v.JobIDNameHex)
			}
			digest := sha1.Sum(append(append([]byte{}, Namespace[:]...), name...))
			digest[6] = digest[6]&0x0f | 0x50
			digest[8] = digest[8]&0x3f | 0x80
			if got := uuid.UUID(digest[:16]); got.String() != v.JobID {
				t.Errorf("hand-made UUIDv5 %s, want %s", got, v.JobID)
			}
			input := mustHex(t, v.LinkInputHex)
			if len(input) != 80+len(v.THLC) {
				t.Fatalf("link input is %d bytes, want 80+%d", len(input), len(v.THLC))
			}
			if !bytes.Equal(input[0:32], prev[:]) ||
				!bytes.Equal(input[32:48], jobID[:]) ||
				string(input[48:48+len(v.THLC)]) != v.THLC ||
				!bytes.Equal(input[48+len(v.THLC):], payloadHash[:]) {
				t.Errorf("link_input_hex does not follow the layout prev|job_id|t_hlc|payload_hash")
			}
			if got := hex.EncodeToString(sha256Sum(input)); got != v.Link {
				t.Errorf("SHA-256(link_input) %s, want %s", got, v.Link)
			}
		})
	}
}

// TestVectorChains checks what the vectors claim about chaining: the second
// vector continues the first (genesis) one, and every non-null prev_link is
// the link of an earlier vector of the same chain with a smaller t_hlc.
func TestVectorChains(t *testing.T) {
	vs := loadVectors(t).Vectors
	if vs[0].PrevLink != nil {
		t.Fatalf("vector 0 must be a genesis entry")
	}
	if vs[1].PrevLink == nil || *vs[1].PrevLink != vs[0].Link {
		t.Fatalf("vector 1's prev_link must be vector 0's link %s", vs[0].Link)
	}
	for i, v := range vs {
		if v.PrevLink == nil {
			continue
		}
		found := false
		for _, p := range vs[:i] {
			if p.Link == *v.PrevLink {
				found = true
				if p.TenantID != v.TenantID || p.PartitionKey != v.PartitionKey {
					t.Errorf("vector %d links into another chain", i)
				}
				if p.THLC >= v.THLC {
					t.Errorf("vector %d: t_hlc %s does not follow %s", i, v.THLC, p.THLC)
				}
			}
		}
		if !found {
			t.Errorf("vector %d: prev_link is no earlier vector's link", i)
		}
	}
}

// TestSpecWorkedExample keeps the worked example in the specification in step
// with the vectors it claims to show.
func TestSpecWorkedExample(t *testing.T) {
	spec, err := os.ReadFile("../docs/chain-spec.md")
	if err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t).Vectors[1]
	for _, want := range []string{Namespace.String(), v.CanonicalPayload, v.PayloadHash, v.JobIDNameHex, v.JobID, *v.PrevLink, v.Link} {
		if !strings.Contains(string(spec), want) {
			t.Errorf("docs/chain-spec.md does not show %s from vector 1", want)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
