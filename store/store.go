// Package store opens ordo's backends by URL: "postgres://..." (or
// "postgresql://...") for PostgreSQL, "sqlite:PATH" for the embedded
// SQLite file. It links both built-in backends (store/postgres and
// store/sqlite), which register themselves with the driver package; a
// program that wants another backend imports it for its registration.
package store

import (
	"context"

	"github.com/ordo-sched/ordo/driver"
	_ "github.com/ordo-sched/ordo/store/postgres" // registers postgres://
	"github.com/ordo-sched/ordo/store/sqlite"
)

// DefaultURL is the embedded default: a SQLite file in the working
// directory, so ordo runs with no server to install.
const DefaultURL = sqlite.DefaultURL

// DB is an open backend: the whole driver contract.
type DB = driver.Driver

// Open opens the backend named by url.
func Open(ctx context.Context, url string) (DB, error) {
	return driver.Open(ctx, url)
}

// OpenMigrated opens the backend named by url and applies the pending
// schema migrations; on failure the backend is closed again, so the caller
// holds an open backend only when it is ready for jobs.
func OpenMigrated(ctx context.Context, url string) (DB, error) {
	db, err := Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
