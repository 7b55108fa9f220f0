package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/driver/drivertest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// TestDriver runs the conformance suite, each subtest on a fresh database
// file of its own.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) drivertest.Target {
		ctx := context.Background()
		path := testdb.SQLitePath(t)
		raw := testdb.OpenMigrated(t, sqlite.Open, path)
		return drivertest.Target{
			Name:        "sqlite",
			Open:        func(t *testing.T) driver.Driver { return testdb.Open(t, sqlite.Open, path) },
			DB:          raw.SQL, // its own connection to the same file
			Table:       func(name string) string { return name },
			Placeholder: func(int) string { return "?" },
			Time:        func(t time.Time) any { return t.UnixMilli() },
			Begin: func(t *testing.T, b driver.Driver) drivertest.Tx {
				// EnqueueTx takes a *sql.Tx of the backend's own handle.
				tx, err := b.(*sqlite.DB).SQL.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tx.Rollback() })
				return drivertest.Tx{
					Tx: tx,
					Exec: func(ctx context.Context, query string, args ...any) error {
						_, err := tx.ExecContext(ctx, query, args...)
						return err
					},
					Commit:   func(context.Context) error { return tx.Commit() },
					Rollback: func(context.Context) error { return tx.Rollback() },
				}
			},
		}
	})
}
