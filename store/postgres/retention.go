package postgres

import (
	"context"

	"github.com/ordo-sched/ordo/driver"
)

// pruneSide is one side's part of PruneFinished, a data-modifying CTE
// named name: the oldest rows of each finished status past its cutoff ($1
// succeeded, $2 cancelled, $3 failed; NULL keeps the status), by the
// partial index of migration 009, at most $4 in all, locked without
// waiting (SKIP LOCKED: a job being retried or read for a backfill is left
// for the next call), and deleted only if still finished and past its
// cutoff when the lock was taken.
func pruneSide(name string, sd side) string {
	oldest := func(status, cutoff string) string {
		return `(SELECT ` + sd.id + ` FROM ` + sd.table + ` WHERE status = '` + status + `' AND updated_at < ` + cutoff +
			` ORDER BY updated_at LIMIT $4)`
	}
	a := sd.alias
	return name + `_doomed AS (
	SELECT ` + sd.id + ` FROM ` + sd.table + ` WHERE ` + sd.id + ` IN (
		SELECT ` + sd.id + ` FROM (` + oldest("succeeded", "$1") + ` UNION ALL ` + oldest("cancelled", "$2") +
		` UNION ALL ` + oldest("failed", "$3") + `) o LIMIT $4)
	FOR UPDATE SKIP LOCKED
), ` + name + ` AS (
	DELETE FROM ` + sd.table + ` ` + a + ` USING ` + name + `_doomed d WHERE ` + a + `.` + sd.id + ` = d.` + sd.id + `
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
