package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

// TestTlogCheck runs the auditor's program of docs/audit.md against a
// running service: it verifies the checkpoint, entries and growth since a
// kept checkpoint, and fails on a forged history, a wrong key or origin.
func TestTlogCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	priv, pub, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(dir, "node-a.key"), filepath.Join(dir, "node-a.pub")
	for f, text := range map[string]string{keyFile: priv, pubFile: pub} {
		if err := os.WriteFile(f, []byte(text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := servicetest.Config(testdb.SQLiteURL(t))
	cfg.Ordo.Audit.SigningKeyFile = keyFile
	cfg.Ordo.Audit.CheckpointInterval = 0 // checkpoints are signed below
	svc, err := service.New(ctx, cfg, service.Options{Wall: servicetest.Wall()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Shutdown(context.Background())
	})
	grow := func(from, to int) {
		t.Helper()
		var jobs []queue.Job
		for i := from; i < to; i++ {
			jobs = append(jobs, queue.Job{TenantID: "acme", Kind: "audit.me", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		}
		if _, err := svc.Queue().EnqueueMany(ctx, jobs); err != nil {
			t.Fatal(err)
		}
		cp := &audit.Checkpointer{Store: svc.Queue().Backend().AuditStore(), Key: signer, Holder: "test"}
		if _, err := cp.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tlogcheck := func(args ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, args, servicetest.AcmeToken, &out, &errb)
		return out.String() + errb.String(), code
	}
	logURL := srv.URL + "/v1/tenants/acme/tlog/"
	kept := filepath.Join(dir, "kept.note")

	grow(0, 300)
	if out, code := tlogcheck("-log", logURL, "-key", pubFile, "-origin", "ordo/acme/", "-entry", "0", "-entry", "299", "-save", kept); code != 0 ||
		!strings.Contains(out, "checkpoint ordo/acme/: size 300") || !strings.Contains(out, "entry 299: link ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	grow(300, 700)
	out, code := tlogcheck("-log", logURL, "-key", pubFile, "-origin", "ordo/acme/", "-old", kept, "-entry", "650")
	if code != 0 || !strings.Contains(out, "consistent with "+kept+" (size 300)") || !strings.Contains(out, "entry 650: link ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	// A checkpoint of another history of size 300, signed with the same
	// key (as by a log that showed this auditor a different chain).
	other, err := audit.SignCheckpoint(audit.CheckpointBody{Origin: "ordo/acme/", Size: 300, Root: [32]byte{1}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(dir, "other.note")
	if err := os.WriteFile(forged, other, 0o644); err != nil {
		t.Fatal(err)
	}
	_, otherPub, _ := audit.GenerateKey(rand.Reader, "node-a")
	otherPubFile := filepath.Join(dir, "other.pub")
	if err := os.WriteFile(otherPubFile, []byte(otherPub), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"-old", forged}, 1, "history rewritten"},
		{[]string{"-entry", "700"}, 1, "entry 700"},
		{[]string{"-key", otherPubFile}, 1, "the log's checkpoint"},
		{[]string{"-origin", "ordo/globex/"}, 1, `want "ordo/globex/"`},
		{[]string{"-entry", "-1"}, 2, "want a chain_pos"},
	} {
		args := append([]string{"-log", logURL, "-key", pubFile, "-origin", "ordo/acme/"}, c.args...)
		if out, code := tlogcheck(args...); code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("%v: exit %d, want %d saying %q:\n%s", c.args, code, c.code, c.says, out)
		}
	}
	// Without the token: the service refuses (the tiles are not public).
	var out2, errb bytes.Buffer
	if code := run(ctx, []string{"-log", logURL, "-key", pubFile, "-origin", "ordo/acme/"}, "", &out2, &errb); code != 2 ||
		!strings.Contains(errb.String(), "status code 401") {
		t.Errorf("without a token: exit %d\n%s%s", code, out2.String(), errb.String())
	}
}
