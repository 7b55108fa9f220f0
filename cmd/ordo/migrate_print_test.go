package main

import (
	"context"
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

	if out, _, code := ordo(t, "migrate", "print", "--dialect", "sqlite"); code != 0 || !strings.Contains(out, "CREATE TABLE jobs (") {
		t.Fatalf("migrate print --dialect sqlite: %d", code)
	}
	if _, errOut, code := ordo(t, "migrate", "print", "--dialect", "oracle"); code != 2 || !strings.Contains(errOut, "unknown dialect") {
		t.Fatalf("migrate print --dialect oracle: %d %s", code, errOut)
	}
}
