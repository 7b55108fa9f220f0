package postgres

import (
	"context"

	"github.com/ordo-sched/ordo/driver"
)

// pruneSide is one side's part of PruneFinished, data-modifying CTEs
// named after name: for each finished status, its oldest rows past its
// cutoff ($1 succeeded, $2 cancelled, $3 failed; NULL keeps the status),
// each a range scan of migration 009's partial index, locked without
// waiting (SKIP LOCKED: a job being retried or read for a backfill is left
// for the next call); then at most $4 of them deleted, each only if still
// finished and past its cutoff when the lock was taken. Each status locks
// its rows where its index scan finds them, rather than looking a list of
// ids up again to lock them.
func pruneSide(name string, sd side) string {
	oldest := func(status, cutoff string) string {
		return name + `_` + status + ` AS (
	SELECT ` + sd.id + ` FROM ` + sd.table + ` WHERE status = '` + status + `' AND updated_at < ` + cutoff + `
	ORDER BY updated_at LIMIT $4 FOR UPDATE SKIP LOCKED
), `
	}
	a := sd.alias
	return oldest("succeeded", "$1") + oldest("cancelled", "$2") + oldest("failed", "$3") + name + ` AS (
	DELETE FROM ` + sd.table + ` ` + a + ` USING (
		SELECT ` + sd.id + ` FROM ` + name + `_succeeded UNION ALL SELECT ` + sd.id + ` FROM ` + name + `_cancelled
		UNION ALL SELECT ` + sd.id + ` FROM ` + name + `_failed LIMIT $4) d
	WHERE ` + a + `.` + sd.id + ` = d.` + sd.id + `
	  AND (` + a + `.status = 'succeeded' AND ` + a + `.updated_at < $1 OR ` + a + `.status = 'cancelled' AND ` + a + `.updated_at < $2
	       OR ` + a + `.status = 'failed' AND ` + a + `.updated_at < $3)
	RETURNING 1
)`
}

// pruneSQL prunes both sides in one statement, so one round trip and one
// short transaction.
var pruneSQL = `WITH ` + pruneSide("hlc", hlcSide) + `, ` + pruneSide("legacy", legacySide) + `
SELECT (SELECT count(*) FROM hlc), (SELECT count(*) FROM legacy)`

// PruneFinished implements driver.Operations.
func (db *DB) PruneFinished(ctx context.Context, p driver.PruneParams) (driver.PruneResult, error) {
	var r driver.PruneResult
	if p.Limit <= 0 {
		return r, nil
	}
	err := db.Pool.QueryRow(ctx, pruneSQL, nullable(p.SucceededBefore), nullable(p.CancelledBefore), nullable(p.FailedBefore), p.Limit).
		Scan(&r.HLC, &r.Legacy)
	return r, wrap("pruning finished jobs", err)
}
