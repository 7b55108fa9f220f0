// Package store opens ordo's backends by URL: "postgres://..." (or
// "postgresql://...") for PostgreSQL, "sqlite:PATH" for the embedded
// SQLite file. The backends themselves live in store/postgres and
// store/sqlite.
package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// DefaultURL is the embedded default: a SQLite file in the working
// directory, so ordo runs with no server to install.
const DefaultURL = "sqlite:ordo.db"

// DB is what every backend offers: the queue's storage, migrations and
// the HLC state store.
type DB interface {
	queue.Backend
	Migrate(ctx context.Context) ([]migrations.Applied, error)
	MigrationStatus(ctx context.Context) ([]migrations.State, error)
	HLCState() hlc.StateStore
	// AuditStore is the audit package's view: streaming chain reads,
	// Merkle tree hashes, checkpoints and snapshots.
	AuditStore() audit.Store
}

// Open opens the backend named by url.
func Open(ctx context.Context, url string) (DB, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return postgres.Open(ctx, url)
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if path == "" {
			return nil, fmt.Errorf("store: %q names no file; use sqlite:PATH, e.g. %s", url, DefaultURL)
		}
		return sqlite.Open(ctx, path)
	}
	return nil, fmt.Errorf("store: database URL %q: want postgres://... or sqlite:PATH", url)
}
