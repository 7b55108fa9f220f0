package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/postgres"
)

func openMigrated(t *testing.T) *postgres.DB {
	t.Helper()
	return testdb.OpenMigrated(t, postgres.Open, testdb.NewDatabase(t))
}

func TestMigrateCreatesTheGuideSchema(t *testing.T) {
	ctx := context.Background()
	db := openMigrated(t)
	for _, table := range []string{"jobs", "scheduler_log", "chain_heads", "batch_snapshot", "job_state", "hlc_state"} {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'scheduler' AND table_name = $1`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table scheduler.%s: found %d, %v", table, n, err)
		}
	}
	var idx string
	if err := db.Pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'scheduler' AND indexname = 'idx_scheduler_log_tenant_hlc'`).Scan(&idx); err != nil {
		t.Fatalf("idx_scheduler_log_tenant_hlc: %v", err)
	}
	// The guide's index leads with (tenant_id, t_hlc) and is the one that
	// enforces UNIQUE (tenant_id, t_hlc, partition_key, job_id).
	if !strings.Contains(idx, "UNIQUE") || !strings.Contains(idx, "(tenant_id, t_hlc, partition_key, job_id)") {
		t.Errorf("idx_scheduler_log_tenant_hlc is %s", idx)
	}
	var constraints int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'scheduler.scheduler_log'::regclass AND contype = 'u'
		AND conindid = 'scheduler.idx_scheduler_log_tenant_hlc'::regclass`).Scan(&constraints); err != nil || constraints != 1 {
		t.Errorf("unique constraints backed by idx_scheduler_log_tenant_hlc: %d, %v; want 1", constraints, err)
	}
	// t_hlc must compare bytewise whatever the database's default collation.
	var coll string
	if err := db.Pool.QueryRow(ctx, `SELECT collation_name FROM information_schema.columns WHERE table_schema = 'scheduler' AND table_name = 'scheduler_log' AND column_name = 't_hlc'`).Scan(&coll); err != nil || coll != "C" {
		t.Errorf("scheduler_log.t_hlc collation = %q, %v; want C", coll, err)
	}

}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{"mysql://x", "sqlite:ordo.db", "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2"} {
		_, err := postgres.Open(ctx, url)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", url)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}
