package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// dbURL returns base with its database replaced by name and the pgx pool
// size set, so both systems get the same pool from the same URL.
func dbURL(base, name string, poolMax int) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parsing the database URL: %w", err)
	}
	u.Path = "/" + name
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(poolMax))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// adminURL is base without the pool setting, for single admin connections.
func adminURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	q := u.Query()
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String()
}

func execAdmin(ctx context.Context, base string, sqls ...string) error {
	conn, err := pgx.Connect(ctx, adminURL(base))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", redact(base), err)
	}
	defer conn.Close(ctx)
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// createDatabase creates a fresh, empty database name on base's server,
// dropping a leftover of an interrupted run first.
func createDatabase(ctx context.Context, base, name string) error {
	id := pgx.Identifier{name}.Sanitize()
	return execAdmin(ctx, base, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)", "CREATE DATABASE "+id)
}

func dropDatabase(ctx context.Context, base, name string) error {
	return execAdmin(ctx, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// vacuumAnalyze runs VACUUM ANALYZE on the whole database at url, so both
// systems start a timed phase with fresh statistics and visibility maps.
func vacuumAnalyze(ctx context.Context, url string) error {
	return execAdmin(ctx, url, "VACUUM ANALYZE")
}

// serverDesc is what the report says about the server, read from it.
type serverDesc struct {
	version    string
	postmaster int // 0: not on this machine (or not readable)
	// The settings that decide whether a commit is durable, as SHOW
	// prints them.
	fsync, synchronousCommit, fullPageWrites string
	dataDir                                  string // "" if not readable
}

// profile names the durability the settings give: "durable" (fsync and
// full_page_writes on, synchronous_commit not off), "fast" (all three
// off) or "mixed".
func (d serverDesc) profile() string {
	switch {
	case d.fsync == "on" && d.fullPageWrites == "on" && d.synchronousCommit != "off":
		return "durable"
	case d.fsync == "off" && d.fullPageWrites == "off" && d.synchronousCommit == "off":
		return "fast"
	}
	return "mixed"
}

// serverInfo describes the server at base. postmaster is its postmaster's
// pid when it runs on this machine and its processes are readable.
func serverInfo(ctx context.Context, base string) (serverDesc, error) {
	var d serverDesc
	conn, err := pgx.Connect(ctx, adminURL(base))
	if err != nil {
		return d, fmt.Errorf("connecting to %s: %w", redact(base), err)
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version'), pg_backend_pid(),
		current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes')`).
		Scan(&d.version, &pid, &d.fsync, &d.synchronousCommit, &d.fullPageWrites); err != nil {
		return d, err
	}
	// data_directory needs superuser or pg_read_all_settings; without it
	// the file system is not reported.
	_ = conn.QueryRow(ctx, "SHOW data_directory").Scan(&d.dataDir)
	d.postmaster = postmasterOf(pid)
	return d, nil
}

// redact hides a password in a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// connectAdmin opens one connection to the database at url, outside any
// system's pool, for the harness's own reads.
func connectAdmin(ctx context.Context, url string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, adminURL(url))
}

// sizeSample is the bytes of a system's tables at one moment: state is
// the mutable job tables, log ordo's scheduler_log (0 for River).
type sizeSample struct {
	at         time.Duration
	state, log int64
}

func tableSizes(ctx context.Context, conn *pgx.Conn) (sizeSample, error) {
	var s sizeSample
	err := conn.QueryRow(ctx, `SELECT
		COALESCE(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname IN ('river_job', 'job_state', 'jobs')), 0)::bigint,
		COALESCE(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname = 'scheduler_log'), 0)::bigint
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname IN ('public', 'scheduler')`).Scan(&s.state, &s.log)
	return s, err
}
