package main

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", the one ordo's SQLite backend uses

	"github.com/ordo-sched/ordo/store/sqlite"
)

// sqliteScheme starts the "URL" of a SQLite system-run: sqlite:PATH, as
// ordo.Open takes it; River opens PATH with the same DSN settings.
const sqliteScheme = "sqlite:"

// sqliteFile is the database file of a SQLite system-run, in a fresh
// temporary directory.
const sqliteFile = "bench.db"

// isSQLite tells whether url names a SQLite file (sqlite:PATH).
func isSQLite(url string) bool { return strings.HasPrefix(url, sqliteScheme) }

// openRiverSQLiteDB opens the file at path the way ordo's SQLite backend
// opens its own (store/sqlite.Open): WAL journal, synchronous=NORMAL,
// busy_timeout 10 s, foreign keys on, BEGIN IMMEDIATE, and one connection,
// which riversqlite's documentation also recommends (SetMaxOpenConns(1)).
func openRiverSQLiteDB(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// newSQLiteFile makes a fresh temporary directory and returns the
// sqlite:PATH of a (not yet created) database file in it, and a function
// removing the directory.
func newSQLiteFile() (string, func(), error) {
	dir, err := os.MkdirTemp("", "ordo-bench-sqlite-")
	if err != nil {
		return "", nil, err
	}
	return sqliteScheme + filepath.Join(dir, sqliteFile), func() { _ = os.RemoveAll(dir) }, nil
}

func migrateRiverSQLite(ctx context.Context, url string) error {
	db, err := openRiverSQLiteDB(ctx, strings.TrimPrefix(url, sqliteScheme))
	if err != nil {
		return err
	}
	defer db.Close()
	return migrateRiverWith(ctx, riversqlite.New(db))
}

// openRiverSQLite opens River on its SQLite driver (riversqlite, over
// database/sql and modernc.org/sqlite).
func openRiverSQLite(ctx context.Context, url string) (system, error) {
	db, err := openRiverSQLiteDB(ctx, strings.TrimPrefix(url, sqliteScheme))
	if err != nil {
		return nil, err
	}
	countDone := func(ctx context.Context) (int, error) {
		var n int
		err := db.QueryRowContext(ctx, completedSQL).Scan(&n)
		return n, err
	}
	return newRiverSystem(riversqlite.New(db), "river (riversqlite, 1 connection)", countDone, func() { _ = db.Close() })
}

// ordoSQLiteCompleted counts ordo's succeeded jobs in its SQLite file.
func ordoSQLiteCompleted(ctx context.Context, db *sqlite.DB) (int, error) {
	var n int
	err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM job_state WHERE status = 'succeeded'").Scan(&n)
	return n, err
}
