package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit/audittest"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// TestAudit runs the audit suite (verifier, checkpoints, snapshots,
// proofs, tampering with raw SQL), each subtest on a fresh database file.
func TestAudit(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Target {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "ordo.db")
		open := func() *sqlite.DB {
			db, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		}
		db := open()
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		raw := open() // a second handle on the same file, for tampering
		return audittest.Target{
			Name: "sqlite",
			Open: func(t *testing.T) (driver.Driver, driver.AuditStore, hlc.StateStore) {
				return db, db.AuditStore(), db.HLCState()
			},
			DB:          raw.SQL,
			Table:       func(name string) string { return name },
			Placeholder: func(int) string { return "?" },
			Time:        func(t time.Time) any { return t.UnixMilli() },
		}
	})
}
