package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ordo-sched/ordo/audit/audittest"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/pgtest"
	"github.com/ordo-sched/ordo/store/postgres"
)

// TestAudit runs the audit suite (verifier, checkpoints, snapshots,
// proofs, tampering with raw SQL), each subtest on a fresh database.
func TestAudit(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Target {
		ctx := context.Background()
		url := pgtest.NewDatabase(t)
		db, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		raw := stdlib.OpenDBFromPool(pool)
		t.Cleanup(func() {
			_ = raw.Close()
			pool.Close()
		})
		return audittest.Target{
			Name: "postgres",
			Open: func(t *testing.T) (driver.Driver, driver.AuditStore, hlc.StateStore) {
				return db, db.AuditStore(), db.HLCState()
			},
			DB:          raw,
			Table:       func(name string) string { return "scheduler." + name },
			Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
			Time:        func(t time.Time) any { return t },
		}
	})
}
