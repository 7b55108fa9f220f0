package postgres_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/internal/testdb"
)

// TestServerVersion logs the PostgreSQL version the tests run on, and
// with ORDO_PG_VERSION set (make test-matrix sets it for each run) checks
// that the server is that major version, so a run cannot pass on another
// server than the one it reports.
func TestServerVersion(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var num int
	var version string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, version()`).Scan(&num, &version); err != nil {
		t.Fatal(err)
	}
	t.Logf("server: %s", version)
	want := os.Getenv("ORDO_PG_VERSION")
	if want == "" {
		return
	}
	major, err := strconv.Atoi(want)
	if err != nil {
		t.Fatalf("ORDO_PG_VERSION=%q is not a major version", want)
	}
	if num/10000 != major {
		t.Fatalf("ORDO_PG_VERSION=%d, but the server is %s (server_version_num %d)", major, version, num)
	}
}
