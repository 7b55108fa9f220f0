package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// RecordArchive implements driver.LogArchive.
func (s auditStore) RecordArchive(ctx context.Context, a *driver.ChainArchive) error {
	k := a.Key
	return s.db.inTx(ctx, "recording an archive of "+k.TenantID+"/"+k.PartitionKey, func(tx pgx.Tx) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT end_pos FROM scheduler.chain_archives WHERE tenant_id = $1 AND partition_key = $2
			ORDER BY start_pos DESC LIMIT 1 FOR UPDATE`, k.TenantID, k.PartitionKey).Scan(&last)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if a.StartPos != last || a.EndPos <= a.StartPos {
			return fmt.Errorf("%w: [%d, %d) does not follow the chain's archives, which end at %d", driver.ErrArchiveRange, a.StartPos, a.EndPos, last)
		}
		var first any
		if a.StartPos > 0 {
			first = a.FirstPrevLink[:]
		}
		_, err = tx.Exec(ctx, `INSERT INTO scheduler.chain_archives (tenant_id, partition_key, start_pos, end_pos, first_prev_link,
				last_link, last_t_hlc, tree_edge, root_hash, checkpoint, archived_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			k.TenantID, k.PartitionKey, a.StartPos, a.EndPos, first, a.LastLink[:], a.LastTHLC, joinHashes(a.TreeEdge),
			a.Root[:], string(a.Checkpoint), a.ArchivedAt)
		return err
	})
}

// ChainArchives implements driver.LogArchive.
func (s auditStore) ChainArchives(ctx context.Context, k chain.Key) ([]driver.ChainArchive, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT start_pos, end_pos, first_prev_link, last_link, last_t_hlc, tree_edge, root_hash,
			checkpoint, archived_at, dropped_at, dropped_entries, dropped_jobs
		FROM scheduler.chain_archives WHERE tenant_id = $1 AND partition_key = $2 ORDER BY start_pos`, k.TenantID, k.PartitionKey)
	if err != nil {
		return nil, wrap("reading the archives of "+k.TenantID+"/"+k.PartitionKey, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.ChainArchive, error) {
		a := driver.ChainArchive{Key: k}
		var first, last, edge, root []byte
		var note string
		var dropped *time.Time
		if err := r.Scan(&a.StartPos, &a.EndPos, &first, &last, &a.LastTHLC, &edge, &root, &note, &a.ArchivedAt, &dropped,
			&a.DroppedEntries, &a.DroppedJobs); err != nil {
			return a, err
		}
		copy(a.FirstPrevLink[:], first)
		copy(a.LastLink[:], last)
		copy(a.Root[:], root)
		a.TreeEdge, a.Checkpoint = splitHashes(edge), []byte(note)
		if dropped != nil {
			a.DroppedAt = dropped.UTC()
		}
		a.ArchivedAt = a.ArchivedAt.UTC()
		return a, nil
	})
	return out, wrap("reading the archives of "+k.TenantID+"/"+k.PartitionKey, err)
}

// DropArchived implements driver.LogArchive. The jobs' rows are locked
// legacy side first, then HLC side, the order every fenced change takes,
// so a concurrent retry either finishes first (and the drop refuses its
// job) or waits and then finds its job gone.
func (s auditStore) DropArchived(ctx context.Context, p driver.DropParams) (driver.DropResult, error) {
	k := p.Key
	var res driver.DropResult
	err := s.db.inTx(ctx, fmt.Sprintf("dropping the archived entries of %s/%s from chain_pos %d", k.TenantID, k.PartitionKey, p.StartPos), func(tx pgx.Tx) error {
		res = driver.DropResult{}
		var end int64
		var lastLink []byte
		var dropped *time.Time
		err := tx.QueryRow(ctx, `SELECT end_pos, last_link, dropped_at FROM scheduler.chain_archives
			WHERE tenant_id = $1 AND partition_key = $2 AND start_pos = $3 FOR UPDATE`, k.TenantID, k.PartitionKey, p.StartPos).
			Scan(&end, &lastLink, &dropped)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: the chain has no archive starting at chain_pos %d", driver.ErrArchiveRange, p.StartPos)
		}
		if err != nil {
			return err
		}
		if dropped != nil {
			return fmt.Errorf("%w: the archive from chain_pos %d was dropped already, at %s", driver.ErrArchiveRange, p.StartPos, dropped.UTC().Format(time.RFC3339))
		}
		var kept int64
		err = tx.QueryRow(ctx, `SELECT start_pos FROM scheduler.chain_archives WHERE tenant_id = $1 AND partition_key = $2
			AND start_pos < $3 AND dropped_at IS NULL ORDER BY start_pos LIMIT 1`, k.TenantID, k.PartitionKey, p.StartPos).Scan(&kept)
		if err == nil {
			return fmt.Errorf("%w: the archive from chain_pos %d is still in the database; drop it first", driver.ErrArchiveRange, kept)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var count int64
		var link []byte
		if err := tx.QueryRow(ctx, `SELECT count(*), (SELECT link FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos = $4 - 1)
			FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4`,
			k.TenantID, k.PartitionKey, p.StartPos, end).Scan(&count, &link); err != nil {
			return err
		}
		if count != end-p.StartPos || string(link) != string(lastLink) {
			return fmt.Errorf("%w: chain_pos %d to %d: the log holds %d entries, and the last one's link is %x, the archive's %x",
				driver.ErrArchiveMismatch, p.StartPos, end-1, count, link, lastLink)
		}
		// The first retained entry: a partition may be dropped whole only
		// if it ends at or before its t_hlc.
		var retained string
		err = tx.QueryRow(ctx, `SELECT t_hlc FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos = $3`,
			k.TenantID, k.PartitionKey, end).Scan(&retained)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: the archive ends with the chain's last entry (chain_pos %d), which stays in the database for the next entry to link to; drop it once the chain has grown",
				driver.ErrArchiveRange, end-1)
		}
		if err != nil {
			return err
		}
		if err := checkFinished(ctx, tx, k, p.StartPos, end); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO scheduler.archived_jobs (tenant_id, job_id, partition_key, chain_pos, t_hlc, link, payload_hash)
			SELECT tenant_id, job_id, partition_key, chain_pos, t_hlc, link, payload_hash FROM scheduler.scheduler_log
			WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4`, k.TenantID, k.PartitionKey, p.StartPos, end); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM scheduler.job_state s USING scheduler.scheduler_log l
			WHERE l.tenant_id = $1 AND l.partition_key = $2 AND l.chain_pos >= $3 AND l.chain_pos < $4 AND s.tenant_id = l.tenant_id AND s.job_id = l.job_id`,
			k.TenantID, k.PartitionKey, p.StartPos, end)
		if err != nil {
			return err
		}
		res.Jobs = tag.RowsAffected()
		// Recorded before the entries go: dropLogRange may end with a
		// partition's detach, which must be the transaction's last step.
		if _, err := tx.Exec(ctx, `UPDATE scheduler.chain_archives SET dropped_at = $4, dropped_entries = $5, dropped_jobs = $6
			WHERE tenant_id = $1 AND partition_key = $2 AND start_pos = $3`, k.TenantID, k.PartitionKey, p.StartPos, p.Now, count, res.Jobs); err != nil {
			return err
		}
		if res.Entries, res.PartitionsDropped, err = dropLogRange(ctx, tx, k, p.StartPos, end, retained); err != nil {
			return err
		}
		if res.Entries != count {
			return fmt.Errorf("%w: chain_pos %d to %d: %d entries counted, %d removed", driver.ErrArchiveMismatch, p.StartPos, end-1, count, res.Entries)
		}
		return nil
	})
	return res, err
}

// checkFinished locks the jobs of chain k's entries [from, to) on both
// sides and fails with ErrArchiveUnfinished, naming the first, if one
// has not finished.
func checkFinished(ctx context.Context, tx pgx.Tx, k chain.Key, from, to int64) error {
	for _, sd := range []side{legacySide, hlcSide} {
		var id, status string
		err := tx.QueryRow(ctx, `WITH locked AS (
				SELECT x.`+sd.id+` AS id, x.status FROM `+sd.table+` x
				WHERE x.`+sd.id+` IN (SELECT job_id FROM scheduler.scheduler_log
					WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4)
				FOR UPDATE)
			SELECT id::text, status FROM locked WHERE status IN ('pending', 'scheduled', 'running') ORDER BY id LIMIT 1`,
			k.TenantID, k.PartitionKey, from, to).Scan(&id, &status)
		if err == nil {
			return fmt.Errorf("%w: job %s is %s (%s)", driver.ErrArchiveUnfinished, id, status, sd.name)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	return nil
}

// dropLogRange removes chain k's entries [from, to) from scheduler_log;
// limit is the t_hlc of the chain's first retained entry (chain_pos to).
// Where a partition (not the default one) holds entries of the range and
// nothing else, and ends at or before limit, the partition is detached and
// dropped whole: no row-by-row DELETE, no WAL per row, nothing left to
// vacuum. The range's entries in the other partitions are deleted.
//
// The detach comes last in the transaction: it takes an ACCESS EXCLUSIVE
// lock on scheduler_log, which every enqueue and read of the log waits
// for until the transaction ends, so nothing slow may follow it. The lock
// is waited for at most logPartitionLockTimeout; past that the whole
// partitions are deleted from row by row instead. Once it is held no
// entry can be added, and each partition is checked again before it is
// dropped: one that holds a row outside the range (a concurrent append,
// of another chain, that committed since the first check) is never
// dropped, only the range's rows are deleted from it.
func dropLogRange(ctx context.Context, tx pgx.Tx, k chain.Key, from, to int64, limit string) (entries int64, partitions int, err error) {
	parts, err := logPartitions(ctx, tx)
	if err != nil {
		return 0, 0, err
	}
	if len(parts) == 0 { // not partitioned
		n, err := deleteLogRange(ctx, tx, "", k, from, to)
		return n, 0, err
	}
	type whole struct {
		name string
		rows int64
	}
	var wholes []whole
	for _, p := range parts {
		if !p.isDefault && p.hi <= limit {
			only, err := holdsOnlyRange(ctx, tx, p.name, k, from, to)
			if err != nil {
				return 0, 0, err
			}
			if only {
				// Counted now, before the lock: an index-only scan of
				// the partition's chain index, which may take a while.
				var n int64
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM ONLY `+pgx.Identifier{"scheduler", p.name}.Sanitize()+`
					WHERE tenant_id = $1 AND partition_key = $2`, k.TenantID, k.PartitionKey).Scan(&n); err != nil {
					return 0, 0, err
				}
				wholes = append(wholes, whole{p.name, n})
				continue
			}
		}
		n, err := deleteLogRange(ctx, tx, p.name, k, from, to)
		if err != nil {
			return 0, 0, err
		}
		entries += n
	}
	if len(wholes) == 0 {
		return entries, 0, nil
	}
	// Last: the detaches, under the strong lock, in a savepoint so that a
	// lock not had in time falls back to deleting.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	dropped, droppedRows, err := func() (int, int64, error) {
		if _, err := sp.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, logPartitionLockTimeout.Milliseconds())); err != nil {
			return 0, 0, err
		}
		// The parent first, then the partition: the order inserts take.
		if _, err := sp.Exec(ctx, `LOCK TABLE ONLY scheduler.scheduler_log IN ACCESS EXCLUSIVE MODE`); err != nil {
			return 0, 0, err
		}
		var dropped int
		var rows int64
		for _, w := range wholes {
			name := pgx.Identifier{"scheduler", w.name}.Sanitize()
			if _, err := sp.Exec(ctx, `LOCK TABLE ONLY `+name+` IN ACCESS EXCLUSIVE MODE`); err != nil {
				return 0, 0, err
			}
			only, err := holdsOnlyRange(ctx, sp, w.name, k, from, to)
			if err != nil {
				return 0, 0, err
			}
			if !only {
				n, err := deleteLogRange(ctx, sp, w.name, k, from, to)
				if err != nil {
					return 0, 0, err
				}
				rows += n
				continue
			}
			if _, err := sp.Exec(ctx, `ALTER TABLE scheduler.scheduler_log DETACH PARTITION `+name); err != nil {
				return 0, 0, err
			}
			if _, err := sp.Exec(ctx, `DROP TABLE `+name); err != nil {
				return 0, 0, err
			}
			dropped++
			rows += w.rows
		}
		_, err := sp.Exec(ctx, `SET LOCAL lock_timeout TO DEFAULT`)
		return dropped, rows, err
	}()
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return 0, 0, err
		}
		return entries + droppedRows, dropped, nil
	}
	if !lockNotAvailable(err) {
		return 0, 0, err
	}
	// The lock was not had in time: delete instead.
	if err := sp.Rollback(ctx); err != nil {
		return 0, 0, err
	}
	for _, w := range wholes {
		n, err := deleteLogRange(ctx, tx, w.name, k, from, to)
		if err != nil {
			return 0, 0, err
		}
		entries += n
	}
	return entries, 0, nil
}

// holdsOnlyRange reports whether partition part holds at least one of
// chain k's entries [from, to) and nothing else: its first and last rows
// in chain order are both chain k's (so no other chain has a row there),
// and k's least and greatest positions in it are within the range. Four
// probes of the partition's chain index, however large it is.
func holdsOnlyRange(ctx context.Context, q pgx.Tx, part string, k chain.Key, from, to int64) (bool, error) {
	t := `ONLY ` + pgx.Identifier{"scheduler", part}.Sanitize()
	var firstT, firstP, lastT, lastP string
	var lo, hi *int64
	err := q.QueryRow(ctx, `SELECT f.tenant_id, f.partition_key, l.tenant_id, l.partition_key,
			(SELECT min(chain_pos) FROM `+t+` WHERE tenant_id = $1 AND partition_key = $2),
			(SELECT max(chain_pos) FROM `+t+` WHERE tenant_id = $1 AND partition_key = $2)
		FROM (SELECT tenant_id, partition_key FROM `+t+` ORDER BY tenant_id, partition_key LIMIT 1) f,
			(SELECT tenant_id, partition_key FROM `+t+` ORDER BY tenant_id DESC, partition_key DESC LIMIT 1) l`,
		k.TenantID, k.PartitionKey).Scan(&firstT, &firstP, &lastT, &lastP, &lo, &hi)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // empty
	}
	if err != nil {
		return false, err
	}
	mine := func(t, p string) bool { return t == k.TenantID && p == k.PartitionKey }
	return mine(firstT, firstP) && mine(lastT, lastP) && lo != nil && *lo >= from && *hi < to, nil
}

// deleteLogRange deletes chain k's entries [from, to) from partition part
// of scheduler_log ("": from the table, whatever its partitions).
func deleteLogRange(ctx context.Context, q pgx.Tx, part string, k chain.Key, from, to int64) (int64, error) {
	t := `scheduler.scheduler_log`
	if part != "" {
		t = `ONLY ` + pgx.Identifier{"scheduler", part}.Sanitize()
	}
	tag, err := q.Exec(ctx, `DELETE FROM `+t+` WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4`,
		k.TenantID, k.PartitionKey, from, to)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
