package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/driver/drivertest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/postgres"
)

// TestDriver runs the conformance suite, each subtest on a fresh database
// of its own.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) drivertest.Target {
		ctx := context.Background()
		url := testdb.NewDatabase(t)
		open := func(t *testing.T) driver.Driver {
			db := testdb.Open(t, postgres.Open, url)
			// chain_heads then trails the log for the whole test, as it may
			// for HeadRefreshInterval in production, and never moves
			// behind the suite's back (heads_test.go covers the refresh).
			db.SetHeadRefreshInterval(time.Hour)
			return db
		}
		testdb.OpenMigrated(t, postgres.Open, url)
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		raw := stdlib.OpenDBFromPool(pool)
		t.Cleanup(func() {
			_ = raw.Close()
			pool.Close()
		})
		return drivertest.Target{
			Name:        "postgres",
			Open:        open,
			DB:          raw,
			Table:       func(name string) string { return "scheduler." + name },
			Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
			Time:        func(t time.Time) any { return t },
			Begin: func(t *testing.T, b driver.Driver) drivertest.Tx {
				tx, err := b.(*postgres.DB).Pool.Begin(ctx) // a pgx.Tx, what EnqueueTx takes here
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
				return drivertest.Tx{
					Tx: tx,
					Exec: func(ctx context.Context, sql string, args ...any) error {
						_, err := tx.Exec(ctx, sql, args...)
						return err
					},
					Commit:   func(ctx context.Context) error { return tx.Commit(ctx) },
					Rollback: func(ctx context.Context) error { return tx.Rollback(ctx) },
				}
			},
		}
	})
}
