// Package sqlite is ordo's embedded backend on SQLite (pure Go, no cgo):
// connection handling, schema migrations, the HLC state store and the
// queue's storage (driver.Driver) on the same handle.
//
// SQLite allows one writer at a time. Rather than let writers collide and
// retry on SQLITE_BUSY, the backend keeps a single connection, so writes
// are serialised in-process, and runs in WAL mode so the file stays
// readable by other processes (the CLI, an auditor) while a service runs.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/migrations"
)

// DB is an open SQLite backend.
type DB struct {
	SQL  *sql.DB
	Path string
	// Now supplies times written by the store itself (updated_at).
	Now func() time.Time

	closed atomic.Bool
	stmts  stmtCache
}

// Open opens (creating if needed) the database file at path. A path of
// ":memory:" gives a private in-memory database, for tests.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	dsn := path
	if path != ":memory:" {
		if dir := filepath.Dir(path); dir != "." {
			if _, err := os.Stat(dir); err != nil {
				return nil, fmt.Errorf("sqlite: directory of database %s: %w", path, err)
			}
		}
		dsn = "file:" + (&url.URL{Path: path}).EscapedPath()
		// The file holds payloads and token hashes: a new one is
		// readable by its owner only (SQLite gives its -wal and -shm
		// files the database file's mode). An existing file keeps the
		// mode its owner chose.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			_ = f.Close()
		case !errors.Is(err, os.ErrExist):
			return nil, fmt.Errorf("sqlite: creating %s: %w", path, err)
		}
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if strings.Contains(dsn, "?") {
		dsn += "&" + q.Encode()
	} else {
		dsn += "?" + q.Encode()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	return &DB{SQL: db, Path: path, Now: time.Now}, nil
}

// DefaultURL is the embedded default: a SQLite file in the working
// directory, so ordo runs with no server to install.
const DefaultURL = "sqlite:ordo.db"

// PathOf returns the file a sqlite: URL names (ok false for another
// scheme): what Open opens, and what commands that must not create a
// database check for.
func PathOf(url string) (path string, ok bool) {
	rest, ok := strings.CutPrefix(url, "sqlite:")
	return strings.TrimPrefix(rest, "//"), ok
}

func init() {
	driver.Register(driver.Backend{
		Schemes: []string{"sqlite"},
		Usage:   "sqlite:PATH",
		Open: func(ctx context.Context, url string) (driver.Driver, error) {
			path, _ := PathOf(url)
			if path == "" {
				return nil, fmt.Errorf("store: %q names no file; use sqlite:PATH, e.g. %s", url, DefaultURL)
			}
			db, err := Open(ctx, path)
			if err != nil {
				return nil, err
			}
			return db, nil
		},
	})
}

// Capabilities implements driver.Driver: SQLite has no cross-process
// notification (workers in other processes find new jobs by polling).
func (db *DB) Capabilities() driver.Capabilities { return driver.Capabilities{Leadership: true} }

// Listen implements driver.Driver: not supported.
func (db *DB) Listen(context.Context) (<-chan struct{}, error) {
	return nil, driver.NotSupported("sqlite", "cross-process notification (LISTEN)")
}

// Close closes the database. Later calls fail with an error wrapping
// driver.ErrClosed.
func (db *DB) Close() error {
	db.closed.Store(true)
	return db.SQL.Close()
}

// Migrate applies pending migrations.
func (db *DB) Migrate(ctx context.Context) ([]migrations.Applied, error) {
	return migrations.Up(ctx, migrations.SQLite, db.SQL)
}

// MigrationStatus lists the embedded migrations and which are applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]migrations.State, error) {
	return migrations.Status(ctx, migrations.SQLite, db.SQL)
}

// HLCState returns the HLC state store kept in the hlc_state table.
func (db *DB) HLCState() hlc.StateStore { return hlcState{db} }

type hlcState struct{ db *DB }

func (s hlcState) Load(ctx context.Context, node string) (int64, error) {
	var bound int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT upper_bound_ms FROM hlc_state WHERE node_id = ?`, node).Scan(&bound)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: reading HLC state of node %s: %w", node, err)
	}
	return bound, nil
}

// saveBound never lowers the stored bound: max() makes a stale writer lose.
const saveBound = `
	INSERT INTO hlc_state (node_id, upper_bound_ms, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (node_id) DO UPDATE
	SET upper_bound_ms = max(upper_bound_ms, excluded.upper_bound_ms), updated_at = excluded.updated_at`

// Save writes a bound directly. A Clock never calls it on this store (see
// BoundWrittenWithData); it is for tools and tests.
func (s hlcState) Save(ctx context.Context, node string, bound int64) error {
	_, err := s.db.SQL.ExecContext(ctx, saveBound, node, bound, s.db.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("sqlite: saving HLC state of node %s: %w", node, err)
	}
	return nil
}

// BoundWrittenWithData reports true: every transaction
// that stores timestamps also raises the node's bound above them, so a
// clock never has to write on a connection of its own, which SQLite's
// single writer could not allow while the enqueue holds the write lock.
func (hlcState) BoundWrittenWithData() bool { return true }
