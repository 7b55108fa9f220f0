package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

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

// serverInfo returns the server's version and, when it runs on this
// machine and its processes are readable, its postmaster pid (else 0).
func serverInfo(ctx context.Context, base string) (version string, postmaster int, err error) {
	conn, err := pgx.Connect(ctx, adminURL(base))
	if err != nil {
		return "", 0, fmt.Errorf("connecting to %s: %w", redact(base), err)
	}
	defer conn.Close(ctx)
	var pid int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), pg_backend_pid()").Scan(&version, &pid); err != nil {
		return "", 0, err
	}
	return version, postmasterOf(pid), nil
}

// redact hides a password in a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
