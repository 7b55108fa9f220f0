package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/internal/testdb"
)

// Issue 16: migrate print, which the code referred to and which did not
// exist, prints SQL that a DBA's own tooling can apply as it is.
func TestMigratePrint(t *testing.T) {
	out, errOut, code := ordo(t, "migrate", "print", "--dialect", "postgres")
	if code != 0 {
		t.Fatalf("migrate print: %d %s", code, errOut)
	}
	for _, want := range []string{"-- 001_legacy_jobs.sql", "-- 002_hlc_queue_chain.sql", "CREATE TABLE scheduler.scheduler_log", "-- 011_token_expiry.sql"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate print lacks %q", want)
		}
	}
	if strings.Contains(out, "+goose Down") || strings.Contains(out, "DROP TABLE scheduler.jobs") {
		t.Error("migrate print prints the Down parts")
	}
	// Applied by hand to an empty database, it makes ordo's schema.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, out); err != nil {
		t.Fatalf("applying the printed SQL: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM scheduler.dashboard_sessions`).Scan(&n); err != nil {
		t.Fatalf("after applying it: %v", err)
	}

	// Issue 16 asks for the SQL "up and down": --down undoes the Up parts,
	// newest migration first, down to no table or index of ordo's left.
	down, errOut, code := ordo(t, "migrate", "print", "--dialect", "postgres", "--down")
	if code != 0 {
		t.Fatalf("migrate print --down: %d %s", code, errOut)
	}
	if strings.Contains(down, "CREATE TABLE") || !strings.Contains(down, "DROP TABLE scheduler.jobs;") ||
		strings.Index(down, "-- 011_token_expiry.sql (down)") > strings.Index(down, "-- 001_legacy_jobs.sql (down)") {
		t.Fatalf("migrate print --down:\n%s", down)
	}
	if _, err := conn.Exec(ctx, down); err != nil {
		t.Fatalf("applying the printed Down SQL: %v", err)
	}
	var left []string
	rows, _ := conn.Query(ctx, `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE nspname = 'scheduler' ORDER BY 1`)
	if left, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(left) != 0 {
		t.Fatalf("after the Down SQL the scheduler schema still holds %q (%v)", left, err)
	}
	// ... and leaves a database the Up parts apply to again.
	if _, err := conn.Exec(ctx, out); err != nil {
		t.Fatalf("applying the printed Up SQL after the Down SQL: %v", err)
	}

	// SQLite likewise, on a file of its own.
	printDB := "sqlite:" + filepath.Join(t.TempDir(), "print.db")
	for _, dir := range []string{"up", "down"} {
		args := []string{"migrate", "print", "--dialect", "sqlite"}
		if dir == "down" {
			args = append(args, "--down")
		}
		sqlOut, errOut, code := ordo(t, args...)
		if code != 0 || (dir == "up") != strings.Contains(sqlOut, "CREATE TABLE jobs (") {
			t.Fatalf("ordo %q: %d %s", args, code, errOut)
		}
		sdb := sqlDB(t, printDB)
		if _, err := sdb.Exec(sqlOut); err != nil {
			t.Fatalf("applying the printed SQLite %s SQL: %v", dir, err)
		}
		var n int
		if err := sdb.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'`).Scan(&n); err != nil ||
			(dir == "up") != (n > 0) {
			t.Fatalf("after the printed SQLite %s SQL: %d schema objects (%v)", dir, n, err)
		}
	}
	if _, errOut, code := ordo(t, "migrate", "print", "--dialect", "oracle"); code != 2 || !strings.Contains(errOut, "unknown dialect") {
		t.Fatalf("migrate print --dialect oracle: %d %s", code, errOut)
	}
}
