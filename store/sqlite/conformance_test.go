package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue/queuetest"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// TestConformance runs the backend conformance suite, each subtest on a
// fresh database file of its own.
func TestConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queuetest.Target {
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
		return queuetest.Target{
			Name:        "sqlite",
			Open:        func(t *testing.T) driver.Driver { return open(t) },
			DB:          raw.SQL, // its own connection to the same file
			Table:       func(name string) string { return name },
			Placeholder: func(int) string { return "?" },
			Begin: func(t *testing.T, b driver.Driver) queuetest.Tx {
				// EnqueueTx takes a *sql.Tx of the backend's own handle.
				tx, err := b.(*sqlite.DB).SQL.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = tx.Rollback() })
				return queuetest.Tx{
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
