// Package testdb gives tests a database of their own, on either backend:
// EachBackend runs a test once on a fresh SQLite file and once on a fresh
// PostgreSQL database; NewDatabase and NewPool give a PostgreSQL database
// alone.
//
// ordo keeps all of its tables in one fixed schema, "scheduler". If every
// test used the same database, tests creating, migrating and dropping that
// schema would trip over each other as soon as `go test ./...` runs two
// packages at once (it does: one test binary per package, in parallel), or
// as soon as a test calls t.Parallel. So every test that needs PostgreSQL
// calls NewDatabase or NewPool and gets a brand-new, empty database,
// created on the server named by ORDO_TEST_DATABASE_URL and dropped WITH
// (FORCE) when the test ends. Tests may then do anything they like to the
// "scheduler" schema.
//
// ORDO_TEST_DATABASE_URL is set by `make test` (through
// scripts/with-postgres.sh, which starts a throwaway cluster when needed).
// Without it the tests fail rather than skip: a green run that silently
// skipped every database test would prove nothing.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-sched/ordo/migrations"
)

// EnvVar names the environment variable holding the URL of the PostgreSQL
// server the tests use. The user must be allowed to create databases.
const EnvVar = "ORDO_TEST_DATABASE_URL"

// DatabasePrefix starts the name of every database NewDatabase creates.
const DatabasePrefix = "ordo_test_"

// timeout bounds each administrative step (connect, create, drop).
const timeout = 30 * time.Second

// URL returns ORDO_TEST_DATABASE_URL, or fails the test if it is not set.
func URL(t testing.TB) string {
	t.Helper()
	u := strings.TrimSpace(os.Getenv(EnvVar))
	if u == "" {
		t.Fatalf("%s is not set: run the tests with `make test` (it starts a throwaway PostgreSQL), "+
			"or wrap the command in scripts/with-postgres.sh, or set %s=postgres://user@host:port/db", EnvVar, EnvVar)
	}
	return u
}

// NewDatabase creates a fresh, empty database on the server named by
// ORDO_TEST_DATABASE_URL, arranges for it to be dropped when the test ends,
// and returns a connection string for it (same host, port, user and
// parameters as ORDO_TEST_DATABASE_URL, other database name).
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := URL(t)
	name := DatabasePrefix + randomHex(t, 8)
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testdb: cannot build a URL for database %s from %s: %v", name, EnvVar, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testdb: create database %s on %s: %v", name, EnvVar, err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled when cleanups run: use our own.
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// NewPool creates a fresh database with NewDatabase and returns a pool
// connected to it. The pool is closed before the database is dropped.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("testdb: open pool on test database: %v", err)
	}
	// Registered after NewDatabase's cleanup, so it runs before it.
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("testdb: ping test database: %v", err)
	}
	return pool
}

// adminExec runs one statement on its own connection to connString.
func adminExec(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connString with its database name replaced by name.
// It understands both the URL form (postgres://...) and the key=value form.
func withDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", err
		}
		u.Path = "/" + name
		u.RawPath = ""
		if q := u.Query(); q.Has("dbname") || q.Has("database") {
			q.Del("dbname")
			q.Del("database")
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	// key=value form: a later key overrides an earlier one.
	return strings.TrimSpace(connString) + " dbname=" + name, nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testdb: random database name: %v", err)
	}
	return hex.EncodeToString(b)
}

// EachBackend runs f as two subtests, "sqlite" and "postgres", each with the
// URL of a fresh, empty database of its own (not migrated).
func EachBackend(t *testing.T, f func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, NewDatabase(t)) })
}

// SQLiteURL returns the URL of a new SQLite file in the test's temporary
// directory, removed when the test ends.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + SQLitePath(t)
}

// SQLitePath returns the path of a new SQLite file in the test's temporary
// directory (what store/sqlite's Open takes), removed when the test ends.
func SQLitePath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "ordo.db")
}

// Backend is what Open and OpenMigrated need of an opened backend. (This
// package imports no backend, so the backends' own internal tests can use
// it: open is the backend's Open, or store.Open.)
type Backend interface {
	Migrate(ctx context.Context) ([]migrations.Applied, error)
	Close() error
}

// Open opens the database at url with open and closes it when the test
// ends; it fails the test if the database cannot be opened.
func Open[DB Backend](t testing.TB, open func(context.Context, string) (DB, error), url string) DB {
	t.Helper()
	db, err := open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// OpenMigrated is Open followed by the migrations, which is where nearly
// every test that works on a database starts.
func OpenMigrated[DB Backend](t testing.TB, open func(context.Context, string) (DB, error), url string) DB {
	t.Helper()
	db := Open(t, open, url)
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}
