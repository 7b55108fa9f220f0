package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// runAuditCLI runs the audit commands as run() would once they are
// registered on the root command.
func runAuditCLI(t *testing.T, args ...string) (stdout string, code int) {
	t.Helper()
	g := &globalFlags{}
	root := &cobra.Command{Use: "ordo", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.db, "db", "", "")
	root.PersistentFlags().StringVar(&g.node, "node", "", "")
	root.AddCommand(newVerifyCommand(g), newSnapshotCommand(g), newProofCommand(g), newKeygenCommand(g), newWitnessCommand(g), newLogCommand(g))
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	if err := root.ExecuteContext(context.Background()); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return out.String(), ee.code
		}
		t.Logf("ordo %v: %v", args, err)
		return out.String() + errb.String(), 2
	}
	return out.String(), 0
}

// sqliteQueue opens the SQLite database at path, migrated, with an HLC
// queue on node-a whose wall clock stands at wallMs, and the function that
// closes the database (before the commands under test open it).
func sqliteQueue(t *testing.T, path string, wallMs int64) (*queue.Queue, func()) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	closeDB := func() { db.Close() }
	t.Cleanup(closeDB) // a second Close does nothing
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	wall := hlc.NewManualClock(wallMs)
	clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true},
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	return q, closeDB
}

// fill enqueues n jobs into acme/"" of the SQLite database at path.
func fill(t *testing.T, path string, n int) []queue.EnqueueResult {
	t.Helper()
	ctx := context.Background()
	q, closeDB := sqliteQueue(t, path, 1_704_067_200_000)
	defer closeDB()
	var jobs []queue.Job
	for i := range n {
		// Idempotency keys: the job ids do not depend on the payloads, so
		// a forger can change a payload without changing its job id.
		jobs = append(jobs, queue.Job{TenantID: "acme", Kind: "email.send", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), IdempotencyKey: fmt.Sprint("k", i)})
	}
	res, err := q.EnqueueMany(ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestAuditCommandsOnSQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordo.db")
	dbURL := "sqlite:" + path
	jobs := fill(t, path, 12)
	prefix := filepath.Join(dir, "node")
	if out, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", prefix); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	if fi, err := os.Stat(prefix + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", fi, err)
	}
	if _, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", prefix); code != 2 {
		t.Fatalf("keygen over existing files: exit %d, want 2", code)
	}
	key, pub := prefix+".key", prefix+".pub"

	// Valid chain: exit 0, in text and JSON.
	if out, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme"); code != 0 || !strings.Contains(out, "12 entries") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	// Checkpoint, kept by the auditor.
	cpFile := filepath.Join(dir, "cp-12.note")
	if out, code := runAuditCLI(t, "--db", dbURL, "--node", "node-a", "proof", "checkpoint", "--sign", "--key", key, "--tenant", "acme", "-o", cpFile); code != 0 {
		t.Fatalf("proof checkpoint --sign: %d %s", code, out)
	}
	note, _ := os.ReadFile(cpFile)
	if !strings.HasPrefix(string(note), "ordo/acme/\n12\n") {
		t.Fatalf("checkpoint:\n%s", note)
	}
	// Snapshot.
	if out, code := runAuditCLI(t, "--db", dbURL, "snapshot", "create", "--tenant", "acme", "--key", key); code != 0 || !strings.Contains(out, "chain_pos 0..11") {
		t.Fatalf("snapshot create: %d %s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "snapshot", "list", "--json"); code != 0 || !strings.Contains(out, `"entry_count": 12`) {
		t.Fatalf("snapshot list: %d %s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "snapshot", "verify", "--key", pub); code != 0 {
		t.Fatalf("snapshot verify: %d %s", code, out)
	}
	// Inclusion proof, checked with no database.
	proofFile := filepath.Join(dir, "incl.json")
	if out, code := runAuditCLI(t, "--db", dbURL, "proof", "inclusion", "--job", jobs[4].JobID.String(), "-o", proofFile); code != 0 {
		t.Fatalf("proof inclusion: %d %s", code, out)
	}
	if out, code := runAuditCLI(t, "proof", "check", "--key", pub, proofFile); code != 0 || !strings.Contains(out, "inclusion proof OK") {
		t.Fatalf("proof check: %d %s", code, out)
	}

	// Tamper: rewrite the whole chain after an edit of entry 2.
	raw, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, raw, 2)
	_ = raw.Close()
	// Without checkpoints the chain looks fine; with the stored one, or
	// the auditor's, it does not: exit 1 and the issue, in JSON.
	if _, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme", "--partition", ""); code != 1 {
		t.Fatalf("verify after rewrite (stored checkpoint, no key): exit %d, want 1", code)
	}
	out, code := runAuditCLI(t, "--db", dbURL, "verify", "--all", "--json", "--key", pub, "--checkpoint", cpFile)
	if code != 1 {
		t.Fatalf("verify --json after rewrite: exit %d\n%s", code, out)
	}
	var res audit.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The stored tree still holds the old links (tree_mismatch), and both
	// checkpoints pin the rewrite to entry 2.
	var cps int
	for _, is := range res.Issues {
		if is.Type == audit.IssueCheckpointMismatch && is.Seq == 2 && is.JobID == jobs[2].JobID {
			cps++
		}
	}
	if res.Valid || len(res.Issues) != 3 || res.Issues[0].Type != audit.IssueTreeMismatch || cps != 2 {
		t.Fatalf("issues: %+v", res.Issues)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "snapshot", "verify", "--key", pub); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("snapshot verify after rewrite: %d %s", code, out)
	}
	// Errors exit 2.
	if _, code := runAuditCLI(t, "--db", dbURL, "verify"); code != 2 {
		t.Fatalf("verify without --tenant or --all: exit %d, want 2", code)
	}
	if _, code := runAuditCLI(t, "proof", "check", "--key", pub, filepath.Join(dir, "missing.json")); code != 2 {
		t.Fatalf("proof check of a missing file: exit %d, want 2", code)
	}
}

// rewrite edits entry pos's payload and recomputes every later link and
// the head, as a forger with write access would.
func rewrite(t *testing.T, db *sqlite.DB, pos int64) {
	t.Helper()
	ctx := context.Background()
	as := db.AuditStore()
	k := chain.Key{TenantID: "acme"}
	var es []driver.Located
	err := as.Scan(ctx, driver.ScanParams{Key: k, From: 0, To: -1, WithPayload: false}, func(e *driver.LogEntry) error {
		var l driver.Located
		l.Pos, l.JobID, l.THLC = e.Pos, e.JobID, string(e.THLC)
		copy(l.PayloadHash[:], e.PayloadHash)
		copy(l.PrevLink[:], e.PrevLink)
		copy(l.Link[:], e.Link)
		es = append(es, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	payload := `{"n":"forged"}`
	ph, err := chain.PayloadHash([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `UPDATE scheduler_log SET payload = ? WHERE job_id = ?`, payload, es[pos].JobID.String()); err != nil {
		t.Fatal(err)
	}
	es[pos].PayloadHash = ph
	prev := es[pos].PrevLink
	for i := pos; i < int64(len(es)); i++ {
		l, err := chainLink(prev, es[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `UPDATE scheduler_log SET payload_hash = ?, prev_link = ?, link = ? WHERE job_id = ?`,
			es[i].PayloadHash[:], nullIfZero(prev), l[:], es[i].JobID.String()); err != nil {
			t.Fatal(err)
		}
		prev = l
	}
	if _, err := db.SQL.ExecContext(ctx, `UPDATE chain_heads SET last_link = ? WHERE tenant_id = 'acme'`, prev[:]); err != nil {
		t.Fatal(err)
	}
}

func chainLink(prev chain.Hash, l driver.Located) (chain.Hash, error) {
	return chain.Link(prev, l.JobID, l.THLC, l.PayloadHash)
}

func nullIfZero(h chain.Hash) any {
	if h.IsZero() {
		return nil
	}
	return h[:]
}
