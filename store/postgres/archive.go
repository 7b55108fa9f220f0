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
		var successor bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos = $3)`,
			k.TenantID, k.PartitionKey, end).Scan(&successor); err != nil {
			return err
		}
		if !successor {
			return fmt.Errorf("%w: the archive ends with the chain's last entry (chain_pos %d), which stays in the database for the next entry to link to; drop it once the chain has grown",
				driver.ErrArchiveRange, end-1)
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
		if res.Entries, res.PartitionsDropped, err = dropLogRange(ctx, tx, k, p.StartPos, end); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE scheduler.chain_archives SET dropped_at = $4, dropped_entries = $5, dropped_jobs = $6
			WHERE tenant_id = $1 AND partition_key = $2 AND start_pos = $3`, k.TenantID, k.PartitionKey, p.StartPos, p.Now, res.Entries, res.Jobs)
		return err
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

// dropLogRange removes chain k's entries [from, to) from scheduler_log.
func dropLogRange(ctx context.Context, tx pgx.Tx, k chain.Key, from, to int64) (entries int64, partitions int, err error) {
	tag, err := tx.Exec(ctx, `DELETE FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4`,
		k.TenantID, k.PartitionKey, from, to)
	if err != nil {
		return 0, 0, err
	}
	return tag.RowsAffected(), 0, nil
}
