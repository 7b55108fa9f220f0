package audit_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
)

// Issue 14: one text form per checkpoint. The verifier refuses what
// golang.org/x/mod/sumdb/note and encoding/base64 let through.
func TestCheckpointFormatIsStrict(t *testing.T) {
	skey, _, err := audit.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), "node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	body := audit.CheckpointBody{Origin: "ordo/acme/p1", Size: 20, Root: tlog.RecordHash([]byte("x"))}
	good, err := audit.SignCheckpoint(body, key)
	if err != nil {
		t.Fatal(err)
	}
	if got, signed, err := audit.OpenCheckpoint(good, key.Public()); err != nil || !signed || got != body {
		t.Fatalf("a well-formed checkpoint: %+v %v %v", got, signed, err)
	}
	text, sigs, _ := strings.Cut(string(good), "\n\n")
	sigLine := strings.TrimSuffix(sigs, "\n")
	b64 := sigLine[strings.LastIndex(sigLine, " ")+1:]
	raw, _ := base64.StdEncoding.DecodeString(b64)
	bad := append([]byte{}, raw...)
	bad[len(bad)-1] ^= 1
	badSig := strings.TrimSuffix(sigLine, b64) + base64.StdEncoding.EncodeToString(bad)
	rootB64 := base64.StdEncoding.EncodeToString(body.Root[:]) // 44 characters, 2 spare bits
	spare := rootB64[:42] + string(rune(rootB64[42]+1)) + "="  // the same 32 bytes, a spare bit set
	if b, err := base64.StdEncoding.DecodeString(spare); err != nil || !bytes.Equal(b, body.Root[:]) {
		t.Fatalf("test setup: %q does not decode to the root: %v", spare, err)
	}
	spareSig := b64[:len(b64)-2] + string(rune(b64[len(b64)-2]+1)) + "="
	if b, err := base64.StdEncoding.DecodeString(spareSig); err != nil || !bytes.Equal(b, raw) {
		t.Fatalf("test setup: %q does not decode to the signature: %v", spareSig, err)
	}
	for name, msg := range map[string][]byte{
		"a second, failing signature by the same key": []byte(text + "\n\n" + sigLine + "\n" + badSig + "\n"),
		"a signature with spare bits set":             []byte(text + "\n\n" + strings.TrimSuffix(sigLine, b64) + spareSig + "\n"),
	} {
		if _, _, err := audit.OpenCheckpoint(msg, key.Public()); err == nil {
			t.Errorf("%s: accepted:\n%s", name, msg)
		}
	}
	for name, txt := range map[string]string{
		"an empty extension line":    body.Text() + "\n",
		"a root with spare bits set": body.Origin + "\n20\n" + spare + "\n",
	} {
		if _, err := audit.ParseCheckpointText(txt); err == nil {
			t.Errorf("%s: accepted: %q", name, txt)
		}
	}
	if _, err := audit.ParseCheckpointText(body.Text() + "ext one\n"); err != nil {
		t.Errorf("a non-empty extension line: %v", err)
	}

	// An inclusion proof of leaf 0 says so.
	var p audit.Proof
	zero := int64(0)
	p.LeafIndex = &zero
	out, _ := json.Marshal(p)
	if !strings.Contains(string(out), `"leaf_index":0`) {
		t.Errorf("a proof of leaf 0: %s", out)
	}
}
