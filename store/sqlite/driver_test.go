package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/driver/drivertest"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// TestDriver runs the conformance suite, each subtest on a fresh database
// file of its own.
func TestDriver(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) drivertest.Target {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "ordo.db")
		open := func(t *testing.T) *sqlite.DB {
			t.Helper()
			db, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		}
		raw := open(t)
		if _, err := raw.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return drivertest.Target{
			Name:        "sqlite",
			Open:        func(t *testing.T) driver.Driver { return open(t) },
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
