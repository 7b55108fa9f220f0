package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/sqlite"
)

func openMigrated(t testing.TB) *sqlite.DB {
	t.Helper()
	return testdb.OpenMigrated(t, sqlite.Open, testdb.SQLitePath(t))
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
}

func TestOpenRejectsMissingDirectory(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "no", "such", "ordo.db")); err == nil {
		t.Fatal("Open in a missing directory succeeded")
	}
}
