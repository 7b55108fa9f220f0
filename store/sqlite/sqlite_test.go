package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
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

// Issue 14: a new database file, and the WAL files beside it, are
// readable by their owner only; an existing file keeps its mode.
func TestNewDatabaseFileIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the common default, which gave 0644
	defer syscall.Umask(old)
	path := testdb.SQLitePath(t)
	db := testdb.OpenMigrated(t, sqlite.Open, path)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v; want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	testdb.Open(t, sqlite.Open, path)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing file's mode after Open: %v, %v; want 0640 kept", fi.Mode().Perm(), err)
	}
}
