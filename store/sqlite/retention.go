package sqlite

import (
	"context"

	"github.com/ordo-sched/ordo/driver"
)

// pruneSide deletes one side's part of PruneFinished: the oldest rows of
// each finished status past its cutoff (?1 succeeded, ?2 cancelled, ?3
// failed, in Unix ms; NULL keeps the status), by the partial index of
// migration 009, at most ?4 in all. SQLite has one writer, so the rows
// cannot change between the choice and the delete.
func pruneSide(sd side) string {
	oldest := func(status, cutoff string) string {
		return `SELECT * FROM (SELECT rowid FROM ` + sd.table + ` WHERE status = '` + status + `' AND updated_at < ` + cutoff +
			` ORDER BY updated_at LIMIT ?4)`
	}
	return `DELETE FROM ` + sd.table + ` WHERE rowid IN (
		SELECT rowid FROM (` + oldest("succeeded", "?1") + ` UNION ALL ` + oldest("cancelled", "?2") + ` UNION ALL ` +
		oldest("failed", "?3") + `) LIMIT ?4)`
}

var pruneHLCSQL, pruneLegacySQL = pruneSide(hlcSide), pruneSide(legacySide)

// PruneFinished implements driver.Operations.
func (db *DB) PruneFinished(ctx context.Context, p driver.PruneParams) (driver.PruneResult, error) {
	var r driver.PruneResult
	if p.Limit <= 0 {
		return r, db.closedErr("pruning finished jobs")
	}
	args := []any{nullMS(p.SucceededBefore), nullMS(p.CancelledBefore), nullMS(p.FailedBefore), p.Limit}
	err := db.inTx(ctx, "pruning finished jobs", func(t *txn) error {
		for _, side := range []struct {
			query string
			n     *int
		}{{pruneHLCSQL, &r.HLC}, {pruneLegacySQL, &r.Legacy}} {
			res, err := t.exec(side.query, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			*side.n = int(n)
		}
		return nil
	})
	if err != nil {
		return driver.PruneResult{}, err
	}
	return r, nil
}
