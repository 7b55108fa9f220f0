package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/ordo-sched/ordo/audit"
)

func testWitnessSigner(t *testing.T, name string, seed byte) *torchwood.CosignatureSigner {
	t.Helper()
	s, err := torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A witness key is a cosignature/v1 vkey; anything else is refused with
// the reason.
func TestParseWitnessKey(t *testing.T) {
	good := testWitnessSigner(t, "witness.example/w", 1).Verifier().String()
	k, err := audit.ParseWitnessKey(" " + good + "\n")
	if err != nil || k.String() != good || k.Name() != "witness.example/w" || !strings.HasPrefix(good, k.KeyID()+"+") {
		t.Fatalf("ParseWitnessKey(%q) = %v, %v", good, k, err)
	}
	_, nodeKey, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	name, rest, _ := strings.Cut(good, "+")
	_, key, _ := strings.Cut(rest, "+")
	for _, c := range []struct{ text, want string }{
		{"", "want <name>+<hash>+<base64 key>"},
		{"witness.example/w", "want <name>+<hash>+<base64 key>"},
		{name + "+zz+" + key, "8 hex digits"},
		{name + "+00000000+" + key, "does not match its name and key"},
		{nodeKey, "not a cosignature/v1 key"}, // an Ed25519 (algorithm 1) note key
		{name + "+12345678+AAAA", "not a cosignature/v1 key"},
	} {
		if _, err := audit.ParseWitnessKey(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseWitnessKey(%q) = %v, want an error saying %q", c.text, err, c.want)
		}
	}
}

// With witnesses, a checkpoint carries the node key's signature, as
// before, and one by the same key under the origin's name, which the
// per-origin verifier key (what witnessctl add-key registers) verifies;
// cosignatures appended to it are counted per key, and each only once.
func TestCheckpointForWitnesses(t *testing.T) {
	privText, _, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := audit.ParsePrivateKey(privText)
	if err != nil {
		t.Fatal(err)
	}
	body := audit.CheckpointBody{Origin: "ordo/acme/eu%20west", Size: 3}
	msg, err := audit.SignCheckpointForWitnesses(body, priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := audit.OpenCheckpoint(msg, priv.Public()); err != nil || got != body {
		t.Fatalf("OpenCheckpoint with the node key: %+v, %v", got, err)
	}
	vkey, err := priv.Public().OriginVerifierKey(body.Origin)
	if err != nil || !strings.HasPrefix(vkey, body.Origin+"+") {
		t.Fatalf("OriginVerifierKey: %q, %v", vkey, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("the per-origin key does not verify the checkpoint: %v\n%s", err, msg)
	}

	w1, w2 := testWitnessSigner(t, "w1.example", 1), testWitnessSigner(t, "w2.example", 2)
	k1, _ := audit.ParseWitnessKey(w1.Verifier().String())
	k2, _ := audit.ParseWitnessKey(w2.Verifier().String())
	cosigned, err := note.Sign(&note.Note{Text: body.Text()}, w1)
	if err != nil {
		t.Fatal(err)
	}
	_, line, _ := strings.Cut(string(cosigned), "\n\n")
	line = strings.TrimSuffix(line, "\n")
	withOne := audit.AppendCosignatures(msg, []string{line})
	if again := audit.AppendCosignatures(withOne, []string{line}); !bytes.Equal(again, withOne) {
		t.Fatalf("appending a cosignature twice:\n%s", again)
	}
	if n, problems := audit.CountCosignatures(withOne, []*audit.WitnessKey{k1, k2}); n != 1 || len(problems) != 1 || !strings.Contains(problems[0], k2.KeyID()) {
		t.Fatalf("CountCosignatures = %d, %v; want 1 and w2's absence", n, problems)
	}
	if _, _, err := audit.OpenCheckpoint(withOne, priv.Public()); err != nil {
		t.Fatalf("the cosigned checkpoint no longer opens with the node key: %v", err)
	}
	// A cosignature of another checkpoint does not count.
	other := audit.CheckpointBody{Origin: body.Origin, Size: 4}
	otherMsg, _ := audit.SignCheckpointForWitnesses(other, priv)
	if n, _ := audit.CountCosignatures(audit.AppendCosignatures(otherMsg, []string{line}), []*audit.WitnessKey{k1}); n != 0 {
		t.Fatalf("a cosignature of size 3 counted on size 4")
	}
}
