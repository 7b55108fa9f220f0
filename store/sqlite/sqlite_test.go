package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo/store/sqlite"
)

func openMigrated(t *testing.T) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ordo.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrateCreatesTheSchema(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	for _, table := range []string{"jobs", "scheduler_log", "chain_heads", "batch_snapshot", "job_state", "hlc_state"} {
		var n int
		if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: found %d, %v", table, n, err)
		}
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'idx_scheduler_log_tenant_hlc'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("idx_scheduler_log_tenant_hlc: found %d, %v", n, err)
	}
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) < 3 || st[0].Name != "001_legacy_jobs.sql" || st[1].Name != "002_hlc_queue_chain.sql" {
		t.Fatalf("status = %+v", st)
	}
	for _, m := range st {
		if !m.Applied {
			t.Fatalf("migration %s not applied: %+v", m.Name, st)
		}
	}
	if again, err := db.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate applied %v, %v", again, err)
	}
}

func TestOpenRejectsMissingDirectory(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "no", "such", "ordo.db")); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}
