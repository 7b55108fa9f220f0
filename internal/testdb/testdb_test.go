package testdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestSchemaRoundTrip proves the harness end to end: a fresh database in
// which the fixed "scheduler" schema can be created, used and dropped.
func TestSchemaRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := NewPool(t)

	for _, sql := range []string{
		`CREATE SCHEMA scheduler`,
		`CREATE TABLE scheduler.probe (id bigint PRIMARY KEY, note text NOT NULL)`,
		`INSERT INTO scheduler.probe (id, note) VALUES (1, 'hello from testdb')`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	var note string
	if err := pool.QueryRow(ctx, `SELECT note FROM scheduler.probe WHERE id = 1`).Scan(&note); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if note != "hello from testdb" {
		t.Fatalf("read back %q, want %q", note, "hello from testdb")
	}

	if _, err := pool.Exec(ctx, `DROP SCHEMA scheduler CASCADE`); err != nil {
		t.Fatalf("drop schema: %v", err)
	}
	var inCatalog, inInfoSchema bool
	err := pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'scheduler'),
		EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = 'scheduler')`).
		Scan(&inCatalog, &inInfoSchema)
	if err != nil {
		t.Fatalf("look for schema: %v", err)
	}
	if inCatalog || inInfoSchema {
		t.Fatalf("schema scheduler still exists after DROP (pg_namespace=%v, information_schema=%v)", inCatalog, inInfoSchema)
	}
}

// TestDatabasesAreIsolated checks that two NewDatabase calls give two
// distinct databases that can both hold a "scheduler" schema without seeing
// each other, and that a database is dropped when its test ends.
func TestDatabasesAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)

	urlA, urlB := NewDatabase(t), NewDatabase(t)
	if urlA == urlB {
		t.Fatalf("two NewDatabase calls returned the same URL %q", urlA)
	}
	connect := func(u string) (*pgx.Conn, string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect %s: %v", u, err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		var db string
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
			t.Fatalf("current_database: %v", err)
		}
		if !strings.HasPrefix(db, DatabasePrefix) {
			t.Fatalf("connected to database %q, want a %s* one", db, DatabasePrefix)
		}
		return conn, db
	}
	a, dbA := connect(urlA)
	b, dbB := connect(urlB)
	if dbA == dbB {
		t.Fatalf("both URLs lead to database %q", dbA)
	}

	// The same schema name in both: no collision.
	for _, c := range []*pgx.Conn{a, b} {
		if _, err := c.Exec(ctx, `CREATE SCHEMA scheduler`); err != nil {
			t.Fatalf("create schema: %v", err)
		}
	}
	if _, err := a.Exec(ctx, `CREATE TABLE scheduler.only_in_a (id int)`); err != nil {
		t.Fatalf("create table in A: %v", err)
	}
	var found bool
	if err := b.QueryRow(ctx, `SELECT to_regclass('scheduler.only_in_a') IS NOT NULL`).Scan(&found); err != nil {
		t.Fatalf("look for table in B: %v", err)
	}
	if found {
		t.Fatal("table created in database A is visible in database B")
	}

	// A database lives exactly as long as its test.
	var inner string
	t.Run("cleanup", func(t *testing.T) {
		u := NewDatabase(t)
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		// Left open on purpose: DROP ... WITH (FORCE) must cope.
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&inner); err != nil {
			t.Fatalf("current_database: %v", err)
		}
	})
	if inner == "" {
		t.Fatal("subtest did not report its database")
	}
	var exists bool
	if err := a.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, inner).Scan(&exists); err != nil {
		t.Fatalf("look for dropped database: %v", err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", inner)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:54320/postgres?sslmode=disable",
			"postgres://postgres@127.0.0.1:54320/ordo_test_x?sslmode=disable"},
		{"postgresql://u:p%40ss@db.example:5432?sslmode=require&dbname=other",
			"postgresql://u:p%40ss@db.example:5432/ordo_test_x?sslmode=require"},
		{"host=/tmp port=5432 user=postgres dbname=postgres",
			"host=/tmp port=5432 user=postgres dbname=postgres dbname=ordo_test_x"},
	} {
		got, err := withDatabase(tc.in, "ordo_test_x")
		if err != nil {
			t.Fatalf("withDatabase(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("withDatabase(%q) = %q, want %q", tc.in, got, tc.want)
		}
		cfg, err := pgconn.ParseConfig(got)
		if err != nil {
			t.Fatalf("pgconn.ParseConfig(%q): %v", got, err)
		}
		if cfg.Database != "ordo_test_x" {
			t.Errorf("%q parses to database %q, want ordo_test_x", got, cfg.Database)
		}
	}
}
