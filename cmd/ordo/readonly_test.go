package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// lastTwoMigrations are the versions of the last two migrations embedded
// for d, and the name of the last one.
func lastTwoMigrations(t *testing.T, d migrations.Dialect) (before, last int64, lastName string) {
	t.Helper()
	fsys, err := migrations.Files(d)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var vs []int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
		if v > last {
			last, lastName = v, n
		}
	}
	slices.Sort(vs)
	if len(vs) < 2 {
		t.Fatalf("%d %s migrations embedded, want at least 2", len(vs), d)
	}
	return vs[len(vs)-2], last, lastName
}

// migrateUpTo applies d's embedded migrations up to version, as ordo
// migrate would (same version table), leaving the later ones pending.
func migrateUpTo(t *testing.T, d migrations.Dialect, db *sql.DB, version int64) {
	t.Helper()
	fsys, err := migrations.Files(d)
	if err != nil {
		t.Fatal(err)
	}
	dialect := database.DialectSQLite3
	if d == migrations.Postgres {
		dialect = database.DialectPostgres
	}
	st, err := database.NewStore(dialect, migrations.VersionTable)
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider("", db, fsys, goose.WithDisableGlobalRegistry(true), goose.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
}

// sqliteFiles describes what a SQLite database's directory holds: every
// file's name, size and SHA-256 (the database, and any -wal, -shm or
// journal file left beside it).
func sqliteFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fmt.Sprintf("%s %d bytes sha256 %x", e.Name(), len(b), sha256.Sum256(b)))
	}
	return files
}

// pgSchema describes a PostgreSQL database's schema: its schemas, every
// relation (tables, indexes, sequences) and column outside the system
// catalogs, and the rows of ordo's version table if it exists.
func pgSchema(t *testing.T, url string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `
		SELECT 'schema ' || nspname FROM pg_namespace
			WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
		UNION ALL
		SELECT 'relation ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
		UNION ALL
		SELECT 'column ' || table_schema || '.' || table_name || '.' || column_name || ' ' || data_type
			FROM information_schema.columns
			WHERE table_schema NOT LIKE 'pg\_%' AND table_schema <> 'information_schema'
		ORDER BY 1`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, migrations.VersionTable).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		rows, _ := conn.Query(ctx, `SELECT 'version ' || version_id || ' ' || is_applied FROM `+migrations.VersionTable+` ORDER BY id`)
		versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, versions...)
	}
	return names
}

// Issue 16: the commands that only read (jobs list|show, verify, proof
// inclusion|consistency|checkpoint, snapshot list|verify, queues list,
// migrate status) never create a database nor migrate one, on either
// backend: a missing SQLite file, a database without ordo's schema and
// one whose schema is behind this binary are each an error that says what
// to run (exit 2), and the database is left exactly as it was. migrate
// status, the command that finds out, lists a database without the schema
// as all pending and one behind as such, and exits 0, writing nothing
// either.
func TestReadCommandsChangeNothing(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "node")
	if out, errOut, code := runCLI(t, "keygen", "--name", "node-a", "--out", keys); code != 0 {
		t.Fatalf("keygen: exit %d %s%s", code, out, errOut)
	}
	job := uuid.NewString()
	commands := [][]string{
		{"jobs", "list", "--tenant", "acme"},
		{"jobs", "show", job},
		{"verify", "--all"},
		{"verify", "--tenant", "acme"},
		{"proof", "checkpoint", "--tenant", "acme"},
		{"proof", "inclusion", "--job", job},
		{"proof", "consistency", "--tenant", "acme", "--from", "1"},
		{"snapshot", "list"},
		{"snapshot", "verify", "--key", keys + ".pub"},
		{"queues", "list"},
		{"migrate", "status"},
	}

	type dbCase struct {
		state string // missing, empty, foreign (someone else's tables), behind
		url   string
		// lastName is the migration a "behind" database lacks.
		lastName string
		// snapshot describes the database; the commands must leave it
		// equal.
		snapshot func(t *testing.T) []string
	}
	var cases []dbCase
	for _, d := range []migrations.Dialect{migrations.SQLite, migrations.Postgres} {
		before, _, lastName := lastTwoMigrations(t, d)
		for _, state := range []string{"missing", "empty", "foreign", "behind"} {
			if d == migrations.Postgres {
				if state == "missing" {
					continue // a SQLite file only
				}
				url := testdb.NewDatabase(t)
				switch state {
				case "foreign":
					conn, err := pgx.Connect(context.Background(), url)
					if err != nil {
						t.Fatal(err)
					}
					_, err = conn.Exec(context.Background(), `CREATE TABLE notes (body text)`)
					_ = conn.Close(context.Background())
					if err != nil {
						t.Fatal(err)
					}
				case "behind":
					db, err := sql.Open("pgx", url)
					if err != nil {
						t.Fatal(err)
					}
					migrateUpTo(t, d, db, before)
					_ = db.Close()
				}
				cases = append(cases, dbCase{"postgres/" + state, url, lastName, func(t *testing.T) []string { return pgSchema(t, url) }})
				continue
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "ordo.db")
			switch state {
			case "empty":
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			case "foreign":
				// Someone else's database: a table, not in WAL mode.
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				_, err = db.Exec(`CREATE TABLE notes (body TEXT)`)
				_ = db.Close()
				if err != nil {
					t.Fatal(err)
				}
			case "behind":
				// Opened as ordo opens it (WAL), migrated but for the last.
				db, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				migrateUpTo(t, d, db.SQL, before)
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
			cases = append(cases, dbCase{"sqlite/" + state, "sqlite:" + path, lastName, func(t *testing.T) []string { return sqliteFiles(t, dir) }})
		}
	}

	for _, c := range cases {
		t.Run(c.state, func(t *testing.T) {
			state := c.state[strings.IndexByte(c.state, '/')+1:]
			path, _ := sqlite.PathOf(c.url)
			for _, args := range commands {
				was := c.snapshot(t)
				out, errOut, code := runCLI(t, append(args, "--db", c.url)...)
				if now := c.snapshot(t); !slices.Equal(now, was) {
					t.Errorf("ordo %s changed the database:\nbefore %q\nafter  %q", strings.Join(args, " "), was, now)
				}
				status := args[0] == "migrate"
				var want []string
				switch {
				case state == "missing":
					want = []string{"no database at " + path + " ", "`ordo migrate` creates it", "`ordo serve`"}
				case status:
					// Listed, exit 0: every migration pending, or only the
					// last one.
					lines := strings.Split(strings.TrimSpace(out), "\n")
					if code != 0 || errOut != "" || len(lines) < 3 {
						t.Errorf("ordo %s on a %s database: exit %d %s%s; want 0 and the list", strings.Join(args, " "), state, code, out, errOut)
						continue
					}
					for i, l := range lines[1:] {
						pending := strings.HasSuffix(l, " pending")
						if wantPending := state != "behind" || i == len(lines)-2; pending != wantPending {
							t.Errorf("ordo migrate status on a %s database, line %q: pending %v, want %v", state, l, pending, wantPending)
						}
					}
					continue
				case state == "behind":
					want = []string{"schema is behind this binary: run `ordo migrate` (pending: " + c.lastName + ")", "has changed nothing"}
				default:
					want = []string{"no ordo schema: run `ordo migrate`", "has changed nothing"}
				}
				if code != 2 || out != "" || !containsAll(errOut, want) {
					t.Errorf("ordo %s on a %s database: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(args, " "), state, code, out, errOut, want)
				}
			}
			if state == "missing" {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Fatalf("%s was created: %v", path, err)
				}
			}
		})
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
