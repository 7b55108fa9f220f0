package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/queue"
)

// work completes the n oldest jobs of the SQLite database at path.
func work(t *testing.T, path string, n int) {
	t.Helper()
	ctx := context.Background()
	q, closeDB := sqliteQueue(t, path, 1_704_067_300_000)
	defer closeDB()
	ls, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: n})
	if err != nil || len(ls) != n {
		t.Fatalf("dequeue: %d, %v", len(ls), err)
	}
	for _, l := range ls {
		if err := q.Complete(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
}

// ordo log archive writes the next range and drops it once it verifies;
// ordo verify joins the database to the archives, or to its record of
// them, and refuses archives with a piece missing.
func TestLogArchiveCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ordo.db")
	dbURL := "sqlite:" + path
	fill(t, path, 12)
	prefix := filepath.Join(dir, "node")
	if out, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", prefix); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	key, pub := prefix+".key", prefix+".pub"
	if out, code := runAuditCLI(t, "--db", dbURL, "--node", "node-a", "proof", "checkpoint", "--sign", "--key", key, "--tenant", "acme", "-o", filepath.Join(dir, "cp.note")); code != 0 {
		t.Fatalf("proof checkpoint --sign: %d %s", code, out)
	}
	a1, a2 := filepath.Join(dir, "a1"), filepath.Join(dir, "a2")
	if _, code := runAuditCLI(t, "--db", dbURL, "log", "archive", "--tenant", "acme", "--before", "5", "--out", a1, "--key", key, "--drop"); code != 2 {
		t.Fatalf("archive --drop of unfinished jobs: exit %d, want 2", code)
	}
	work(t, path, 8)
	if out, code := runAuditCLI(t, "--db", dbURL, "log", "drop", a1, "--key", pub); code != 0 || !strings.Contains(out, "dropped 5 entries and 5 finished jobs' state") {
		t.Fatalf("log drop: %d %s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "log", "archive", "--tenant", "acme", "--before", "10", "--out", a2, "--key", key, "--drop"); code != 2 ||
		!strings.Contains(out, "archived acme/\"\" chain_pos 5..9 (5 entries)") {
		t.Fatalf("archive --drop with jobs 8 and 9 unfinished: exit %d, want 2\n%s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme", "--key", pub, "--archive", a2, "--archive", a1); code != 0 ||
		!strings.Contains(out, "7 entries after 5 archived (joined to archive files)") {
		t.Fatalf("verify --archive: %d\n%s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme", "--key", pub); code != 0 ||
		!strings.Contains(out, "7 entries after 5 archived (joined to the database's record)") {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme", "--key", pub, "--archive", a2); code != 1 {
		t.Fatalf("verify --archive with the first piece missing: exit %d, want 1\n%s", code, out)
	}
}
