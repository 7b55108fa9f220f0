// Package migrations holds ordo's database schema as SQL files embedded in
// the binary, one set per backend, and applies them with goose.
//
// The PostgreSQL files create the schema named in the HLC migration guide
// (scheduler.jobs, scheduler.scheduler_log, scheduler.chain_heads,
// scheduler.batch_snapshot, idx_scheduler_log_tenant_hlc, and the migration
// 002_hlc_queue_chain.sql itself), because operators follow the guide by
// name. The SQLite files mirror them table for table.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialect names a backend.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// VersionTable records applied migrations. On PostgreSQL it lives in the
// public schema because the scheduler schema is created by migration 001.
const VersionTable = "ordo_schema_migrations"

// lockID is the advisory lock key that serialises concurrent migrators
// (several `ordo serve` processes starting at once).
const lockID = 0x6f72646f // "ordo"

// Files returns the embedded SQL of dialect, for `ordo migrate print` and
// for people who apply migrations with their own tooling.
func Files(d Dialect) (fs.FS, error) {
	switch d {
	case Postgres, SQLite:
		return fs.Sub(files, string(d))
	}
	return nil, fmt.Errorf("migrations: unknown dialect %q (want postgres or sqlite)", d)
}

func provider(d Dialect, db *sql.DB) (*goose.Provider, error) {
	fsys, err := Files(d)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	dialect := database.DialectSQLite3
	if d == Postgres {
		dialect = database.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	store, err := database.NewStore(dialect, VersionTable)
	if err != nil {
		return nil, err
	}
	opts = append(opts, goose.WithStore(store))
	return goose.NewProvider("", db, fsys, opts...)
}

// Applied describes one migration applied by Up.
type Applied struct {
	Version  int64
	Name     string
	Duration time.Duration
}

// Up applies every pending migration, in order, each in its own
// transaction. It is safe to call from several processes at once on
// PostgreSQL and does nothing when the schema is current.
func Up(ctx context.Context, d Dialect, db *sql.DB) ([]Applied, error) {
	p, err := provider(d, db)
	if err != nil {
		return nil, err
	}
	results, err := p.Up(ctx)
	var out []Applied
	for _, r := range results {
		out = append(out, Applied{Version: r.Source.Version, Name: baseName(r.Source.Path), Duration: r.Duration})
	}
	if err != nil {
		return out, fmt.Errorf("migrations: applying %s migrations: %w", d, err)
	}
	return out, nil
}

// State describes one known migration and whether it is applied.
type State struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// Status lists every embedded migration and whether it has been applied.
func Status(ctx context.Context, d Dialect, db *sql.DB) ([]State, error) {
	p, err := provider(d, db)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: reading %s migration status: %w", d, err)
	}
	out := make([]State, 0, len(st))
	for _, s := range st {
		out = append(out, State{
			Version:   s.Source.Version,
			Name:      baseName(s.Source.Path),
			Applied:   s.State == goose.StateApplied,
			AppliedAt: s.AppliedAt,
		})
	}
	return out, nil
}

// Pending reports whether any embedded migration is not yet applied, for
// readiness checks.
func Pending(ctx context.Context, d Dialect, db *sql.DB) (bool, error) {
	p, err := provider(d, db)
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}
