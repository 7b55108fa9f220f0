package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo/service/listtest"
	"github.com/ordo-sched/ordo/store/sqlite"
)

func TestListerAndTokenStore(t *testing.T) {
	listtest.Run(t, func(t *testing.T) listtest.Backend {
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
	})
}
