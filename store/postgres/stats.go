package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Planner statistics of a queue that fills from empty.
//
// PostgreSQL caches the plan of a prepared statement: after five runs it
// keeps a generic plan if that looks no dearer than the custom ones. On a
// new database those first runs see empty tables, so the generic plan of,
// say, the enqueue's existence probe (job_id = ANY($1)) is a sequential
// scan, and it stays cached until an ANALYZE invalidates it. Autovacuum's
// first ANALYZE comes at its next wake-up, up to autovacuum_naptime (a
// minute) later; until then every probe scans the whole, growing table
// (seen: 4.8 ms a probe at 20,000 jobs, and single-job enqueues 2.6 times
// slower at 20,000 jobs than at 6,000). So a backend analyzes the queue's
// tables itself when the rows it wrote since it opened reach 1,000, then
// 10,000, 100,000 and 1,000,000, and a table's statistics count fewer
// than half of them: once a decade, in the background, never after that
// (autovacuum's scale factor keeps up with a table that large).
const (
	firstStatsRefresh = 1_000
	lastStatsRefresh  = 1_000_000
	statsRefreshTime  = time.Minute
)

// queueTables are the tables whose statistics the refresh keeps up.
var queueTables = []string{"job_state", "scheduler_log", "jobs"}

type statsWatch struct {
	mu      sync.Mutex
	written int64 // rows this backend wrote since it opened
	next    int64 // refresh when written reaches it; 0 before the first write
	running bool
	// refreshed receives a value after each refresh (tests wait on it).
	refreshed chan struct{}
}

// noteWritten counts n rows written and starts a refresh when one is due.
func (db *DB) noteWritten(n int) {
	w := &db.stats
	w.mu.Lock()
	if w.next == 0 {
		w.next = firstStatsRefresh
	}
	w.written += int64(n)
	due := w.written >= w.next && w.next <= lastStatsRefresh && !w.running
	if due {
		w.running = true
		for w.next <= w.written {
			w.next *= 10
		}
	}
	written := w.written
	w.mu.Unlock()
	if due {
		go db.refreshStats(written)
	}
}

// refreshStats analyzes each queue table whose statistics count fewer
// than half of written rows. Failing is harmless (autovacuum still
// analyzes later), so errors end the refresh quietly.
func (db *DB) refreshStats(written int64) {
	w := &db.stats
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
		select {
		case w.refreshed <- struct{}{}:
		default:
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), statsRefreshTime)
	defer cancel()
	rows, err := db.Pool.Query(ctx, `SELECT relname FROM pg_class
		WHERE relnamespace = 'scheduler'::regnamespace AND relname = ANY($1) AND reltuples < $2`, queueTables, float64(written)/2)
	if err != nil {
		return
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, t := range stale {
		if _, err := db.Pool.Exec(ctx, "ANALYZE scheduler."+pgx.Identifier{t}.Sanitize()); err != nil {
			return
		}
	}
}
