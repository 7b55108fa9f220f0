package postgres_test

import (
	"context"
	"testing"

	"github.com/ordo-sched/ordo/internal/pgtest"
	"github.com/ordo-sched/ordo/service/listtest"
	"github.com/ordo-sched/ordo/store/postgres"
)

func TestListerAndTokenStore(t *testing.T) {
	listtest.Run(t, func(t *testing.T) listtest.Backend {
		ctx := context.Background()
		db, err := postgres.Open(ctx, pgtest.NewDatabase(t))
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
