package main

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// readOnlyHelp ends the help of every command that only reads (openReadOnly).
const readOnlyHelp = "It only reads: a SQLite --db whose file does not exist, a database without ordo's schema, or one whose " +
	"schema is behind this binary (migrations pending) is an error (exit 2), and nothing is created or migrated; " +
	"ordo migrate does that."

// openExisting opens the configured database for a command that only
// reads (openReadOnly).
func (g *globalFlags) openExisting(ctx context.Context) (store.DB, error) {
	url, err := g.databaseURL()
	if err != nil {
		return nil, err
	}
	return openReadOnly(ctx, url)
}

// openReadOnly opens url for a command that only reads and must leave the
// database as it found it: it refuses, before opening the database
// through the store, a missing SQLite file (mustExist), a database without
// ordo's schema and one whose schema is behind this binary
// (schemaStatus, requireCurrent), so that nothing is ever created or
// migrated by a read.
func openReadOnly(ctx context.Context, url string) (store.DB, error) {
	states, err := schemaStatus(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := requireCurrent(url, states); err != nil {
		return nil, err
	}
	return store.Open(ctx, url)
}

// requireCurrent is nil when every migration of states is applied, else
// the error a read-only command exits 2 with.
func requireCurrent(url string, states []migrations.State) error {
	var pending []string
	for _, s := range states {
		if !s.Applied {
			pending = append(pending, s.Name)
		}
	}
	where := config.RedactURL(url)
	switch {
	case len(pending) == 0:
		return nil
	case len(pending) == len(states):
		return fmt.Errorf("%s: no ordo schema: run `ordo migrate` to create it (`ordo serve` does too); this command only reads and has changed nothing", where)
	default:
		return fmt.Errorf("%s: schema is behind this binary: run `ordo migrate` (pending: %s); this command only reads and has changed nothing",
			where, strings.Join(pending, ", "))
	}
}

// schemaStatus lists the migrations this binary embeds for url's backend
// and whether the database has applied each, as `goose status` would,
// without writing anything: goose's status creates its version table
// (migrations.VersionTable) when it is missing, while this reads that
// table only if it is there (no table: nothing is applied). A missing
// SQLite file is an error (mustExist); an empty one, or ":memory:", has
// nothing applied and is not opened at all (SQLite would write its header
// into it).
//
// A SQLite file is read through a query-only connection of its own, not
// through the store, whose WAL pragma would switch someone else's
// database file to WAL; PostgreSQL through the store's pool, which takes
// every URL the store takes (pool_max_conns...) and answers connection
// errors as the store does.
func schemaStatus(ctx context.Context, url string) ([]migrations.State, error) {
	var (
		d      migrations.Dialect
		db     *sql.DB
		exists string // one row: whether the version table exists
	)
	if path, ok := sqlite.PathOf(url); ok {
		d = migrations.SQLite
		if path == "" {
			return nil, fmt.Errorf("store: %q names no file; use sqlite:PATH, e.g. %s", url, sqlite.DefaultURL)
		}
		if err := mustExist(url); err != nil {
			return nil, err
		}
		if path == ":memory:" {
			return embeddedStates(d, nil)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if fi.Size() == 0 {
			return embeddedStates(d, nil)
		}
		dsn := "file:" + (&neturl.URL{Path: path}).EscapedPath() + "?_pragma=query_only(1)&_pragma=busy_timeout(10000)"
		if db, err = sql.Open("sqlite", dsn); err != nil {
			return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
		}
		exists = `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '` + migrations.VersionTable + `'`
	} else if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		d = migrations.Postgres
		pg, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		defer pg.Close()
		db = stdlib.OpenDBFromPool(pg.Pool)
		// Found as goose's unqualified queries find it: on search_path.
		exists = `SELECT to_regclass('` + migrations.VersionTable + `') IS NOT NULL`
	} else {
		// No other backend is linked into ordo: the store says which
		// URLs it takes.
		other, err := store.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		_ = other.Close()
		return nil, fmt.Errorf("%s: cannot read its schema version without writing", config.RedactURL(url))
	}
	defer db.Close()

	var hasTable bool
	if err := db.QueryRowContext(ctx, exists).Scan(&hasTable); err != nil {
		return nil, fmt.Errorf("reading the schema version of %s: %w", config.RedactURL(url), err)
	}
	applied := map[int64]time.Time{}
	if hasTable {
		rows, err := db.QueryContext(ctx, `SELECT version_id, tstamp FROM `+migrations.VersionTable+` ORDER BY id`)
		if err != nil {
			return nil, fmt.Errorf("reading the schema version of %s: %w", config.RedactURL(url), err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			var at sql.NullTime
			if err := rows.Scan(&v, &at); err != nil {
				return nil, fmt.Errorf("reading the schema version of %s: %w", config.RedactURL(url), err)
			}
			// goose reports a version's latest row.
			if prev, ok := applied[v]; !ok || at.Time.After(prev) {
				applied[v] = at.Time
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading the schema version of %s: %w", config.RedactURL(url), err)
		}
	}
	return embeddedStates(d, applied)
}

// embeddedStates lists the migrations embedded for d, in version order,
// each applied (at that time) when applied holds its version.
func embeddedStates(d migrations.Dialect, applied map[int64]time.Time) ([]migrations.State, error) {
	fsys, err := migrations.Files(d)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	states := make([]migrations.State, 0, len(names))
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return nil, fmt.Errorf("embedded migration %s: %w", name, err)
		}
		s := migrations.State{Version: v, Name: name}
		s.AppliedAt, s.Applied = applied[v]
		states = append(states, s)
	}
	slices.SortFunc(states, func(a, b migrations.State) int { return cmp.Compare(a.Version, b.Version) })
	return states, nil
}
