package main

import (
	"context"
	"fmt"
	"io"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// With -statements N, each PostgreSQL system-run resets
// pg_stat_statements before its measurement and prints, after it, the N
// statements of its database that took the most server time: where a
// system's server time goes, by statement, for the same run that the
// report measures. It needs the extension preloaded
// (shared_preload_libraries; scripts/with-postgres.sh preloads it when the
// server has it) and says so when it is not.

// resetStatements creates the extension in the run's database if needed
// and empties the statistics of every database.
func resetStatements(ctx context.Context, url string) error {
	if err := execAdmin(ctx, url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT pg_stat_statements_reset()"); err != nil {
		return fmt.Errorf("-statements needs pg_stat_statements in shared_preload_libraries: %w", err)
	}
	return nil
}

var spaces = regexp.MustCompile(`\s+`)

// printStatements writes the n statements of the run's database with the
// most total execution time since resetStatements.
func printStatements(ctx context.Context, w io.Writer, url, label string, n int) error {
	conn, err := pgx.Connect(ctx, adminURL(url))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT calls, total_exec_time, mean_exec_time, rows, query FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT $1`, n)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintf(w, "%s: top statements by server time (pg_stat_statements)\n  %8s %10s %9s %8s  %s\n", label, "calls", "total ms", "mean ms", "rows", "query")
	for rows.Next() {
		var calls, nrows int64
		var total, mean float64
		var q string
		if err := rows.Scan(&calls, &total, &mean, &nrows, &q); err != nil {
			return err
		}
		q = spaces.ReplaceAllString(q, " ")
		if len(q) > 110 {
			q = q[:110]
		}
		fmt.Fprintf(w, "  %8d %10.1f %9.3f %8d  %s\n", calls, total, mean, nrows, q)
	}
	return rows.Err()
}
