package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// walJobs is the number of jobs of each enqueue phase of wal_per_job, at
// scale 1; the work phase works both phases' jobs.
const walJobs = 20_000

// walPhases are wal_per_job's phases, in order.
var walPhases = []string{"bulk", "single", "work"}

// walSnapshot is what wal_per_job reads from the server around a phase.
type walSnapshot struct {
	// lsn is pg_current_wal_insert_lsn(), not pg_current_wal_lsn(): the
	// latter is the write position, which lags behind what has been
	// inserted when commits do not wait for their flush
	// (synchronous_commit off; seen: half of a bulk phase's WAL missing).
	lsn string
	fpi int64 // pg_stat_wal.wal_fpi (the whole cluster)
	// Over the user tables of the database (only the system's schema):
	// index entries written, i.e. rows inserted plus non-HOT updates, each
	// weighted by its table's number of indexes (all: upper bound, partial
	// indexes counted as if every row matched them; full: lower bound,
	// partial indexes left out); rows inserted, non-HOT and HOT updates.
	entriesAll, entriesFull  int64
	rowsIns, rowsUpd, hotUpd int64
	indexBytes               int64 // pg_relation_size of every index
}

// walSnapshotSQL reads a walSnapshot. Index entries: a row insert or a
// non-HOT update adds one entry to every index of its table (to a partial
// index only if the row matches it); a HOT update adds none; deletes add
// none.
const walSnapshotSQL = `
WITH t AS (
	SELECT s.n_tup_ins AS ins, s.n_tup_upd - s.n_tup_hot_upd AS upd, s.n_tup_hot_upd AS hot,
		(SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid) AS idx_all,
		(SELECT count(*) FROM pg_index i WHERE i.indrelid = s.relid AND i.indpred IS NULL) AS idx_full
	FROM pg_stat_user_tables s
)
SELECT pg_current_wal_insert_lsn()::text,
	(SELECT wal_fpi FROM pg_stat_wal),
	coalesce((SELECT sum((ins + upd) * idx_all) FROM t), 0)::bigint,
	coalesce((SELECT sum((ins + upd) * idx_full) FROM t), 0)::bigint,
	coalesce((SELECT sum(ins) FROM t), 0)::bigint,
	coalesce((SELECT sum(upd) FROM t), 0)::bigint,
	coalesce((SELECT sum(hot) FROM t), 0)::bigint,
	coalesce((SELECT sum(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes), 0)::bigint`

func readWalSnapshot(ctx context.Context, conn *pgx.Conn) (walSnapshot, error) {
	var s walSnapshot
	err := conn.QueryRow(ctx, walSnapshotSQL).Scan(&s.lsn, &s.fpi, &s.entriesAll, &s.entriesFull,
		&s.rowsIns, &s.rowsUpd, &s.hotUpd, &s.indexBytes)
	return s, err
}

// waitIdle waits until no other session is connected to conn's database
// (at most 15 s): a backend flushes its table and WAL statistics when it
// exits, so the counters are complete only then. Autovacuum workers count
// as sessions too.
func waitIdle(ctx context.Context, conn *pgx.Conn) error {
	var n int
	for range 150 {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%d sessions still connected to the database 15 s after the phase", n)
}

// measureWAL: the WAL and index entries a system writes per job. Three
// phases on one database, each with the system opened at its start and
// closed at its end: bulk (n jobs, bulk path, batches of 10,000), single
// (n more jobs, one per call from 32 goroutines, as single_enqueue_32) and
// work (a client with 100 workers works all 2n jobs to completion). Before
// each phase: CHECKPOINT (so both systems pay full-page images for the
// same state, the first touch of every page after a checkpoint, when
// full_page_writes is on) and no session left on the database. WAL is
// pg_wal_lsn_diff of pg_current_wal_insert_lsn() after and before the phase: it
// includes whatever else the server wrote meanwhile, so the server must
// be otherwise idle; autovacuum is switched off on the database's tables
// for the scenario so that it does not land in a phase at random.
func measureWAL(ctx context.Context, p params, sys, url string) (result, error) {
	n := scaled(walJobs, p.Scale, 1000)
	conn, err := pgx.Connect(ctx, adminURL(url))
	if err != nil {
		return result{}, err
	}
	defer conn.Close(context.Background())
	if err := autovacuumOff(ctx, conn); err != nil {
		return result{}, err
	}
	wc := p.Tuning.config("work_100", sys, 100)
	r := result{Jobs: 2 * n, Extra: map[string]float64{}}
	var workSettings string
	phases := map[string]func() error{
		"bulk": func() error {
			s, err := openSystem(ctx, sys, url)
			if err != nil {
				return err
			}
			defer s.close()
			return insertAll(ctx, s, 0, n, min(bulkBatch, n))
		},
		"single": func() error {
			s, err := openSystem(ctx, sys, url)
			if err != nil {
				return err
			}
			defer s.close()
			var next atomic.Int64
			return fanOut(singleWorkers, func() error {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return nil
					}
					if err := s.insert(ctx, benchArgs{Seq: int64(n) + i}); err != nil {
						return err
					}
				}
			})
		},
		"work": func() error {
			s, err := openSystem(ctx, sys, url)
			if err != nil {
				return err
			}
			defer s.close()
			workSettings = s.settings(wc)
			var errs errorLog
			note, err := workToCompletion(ctx, s, wc, 2*n, &errs)
			if note != "" {
				r.Notes = append(r.Notes, note)
			}
			r.Notes = append(r.Notes, errs.notes()...)
			return err
		},
	}
	jobs := map[string]int{"bulk": n, "single": n, "work": 2 * n}
	err = window(p, &r, func() error {
		for _, ph := range walPhases {
			if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
				return fmt.Errorf("CHECKPOINT (the scenario needs a superuser or pg_checkpoint): %w", err)
			}
			if err := waitIdle(ctx, conn); err != nil {
				return err
			}
			before, err := readWalSnapshot(ctx, conn)
			if err != nil {
				return err
			}
			if err := phases[ph](); err != nil {
				return fmt.Errorf("%s phase: %w", ph, err)
			}
			if err := waitIdle(ctx, conn); err != nil {
				return err
			}
			after, err := readWalSnapshot(ctx, conn)
			if err != nil {
				return err
			}
			var wal float64
			if err := conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::text::pg_lsn, $2::text::pg_lsn)", after.lsn, before.lsn).Scan(&wal); err != nil {
				return err
			}
			per := func(d int64) float64 { return float64(d) / float64(jobs[ph]) }
			r.Extra[ph+"_wal_b"] = wal / float64(jobs[ph])
			r.Extra[ph+"_fpi"] = per(after.fpi - before.fpi)
			r.Extra[ph+"_idx_max"] = per(after.entriesAll - before.entriesAll)
			r.Extra[ph+"_idx_min"] = per(after.entriesFull - before.entriesFull)
			r.Extra[ph+"_rows_ins"] = per(after.rowsIns - before.rowsIns)
			r.Extra[ph+"_rows_upd"] = per(after.rowsUpd - before.rowsUpd)
			r.Extra[ph+"_rows_hot"] = per(after.hotUpd - before.hotUpd)
			r.Extra[ph+"_idx_bytes"] = per(after.indexBytes - before.indexBytes)
		}
		return nil
	})
	r.PeakRSSMB = peakRSSMB()
	r.Settings = fmt.Sprintf("bulk: %d jobs in batches of %d; single: %d jobs, one per call, from %d goroutines; work: the %d jobs, %s; CHECKPOINT before each phase, autovacuum off on the tables",
		n, min(bulkBatch, n), n, singleWorkers, 2*n, strings.TrimPrefix(workSettings, sys+": "))
	return r, err
}

// autovacuumOff switches autovacuum off on every table of conn's database.
func autovacuumOff(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := conn.Exec(ctx, "ALTER TABLE "+t+" SET (autovacuum_enabled = off)"); err != nil {
			return err
		}
	}
	return nil
}
