package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// RecordArchive implements driver.LogArchive.
func (s auditStore) RecordArchive(ctx context.Context, a *driver.ChainArchive) error {
	k := a.Key
	return s.db.inTx(ctx, "recording an archive of "+k.TenantID+"/"+k.PartitionKey, func(t *txn) error {
		var last int64
		err := t.queryRow(`SELECT end_pos FROM chain_archives WHERE tenant_id = ?1 AND partition_key = ?2
			ORDER BY start_pos DESC LIMIT 1`, k.TenantID, k.PartitionKey).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if a.StartPos != last || a.EndPos <= a.StartPos {
			return fmt.Errorf("%w: [%d, %d) does not follow the chain's archives, which end at %d", driver.ErrArchiveRange, a.StartPos, a.EndPos, last)
		}
		var first any
		if a.StartPos > 0 {
			first = a.FirstPrevLink[:]
		}
		_, err = t.exec(`INSERT INTO chain_archives (tenant_id, partition_key, start_pos, end_pos, first_prev_link,
				last_link, last_t_hlc, tree_edge, root_hash, checkpoint, archived_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)`,
			k.TenantID, k.PartitionKey, a.StartPos, a.EndPos, first, a.LastLink[:], a.LastTHLC, joinHashes(a.TreeEdge),
			a.Root[:], string(a.Checkpoint), ms(a.ArchivedAt))
		return err
	})
}

// ChainArchives implements driver.LogArchive.
func (s auditStore) ChainArchives(ctx context.Context, k chain.Key) ([]driver.ChainArchive, error) {
	if err := s.db.closedErr("reading the archives of " + k.TenantID + "/" + k.PartitionKey); err != nil {
		return nil, err
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT start_pos, end_pos, first_prev_link, last_link, last_t_hlc, tree_edge, root_hash,
			checkpoint, archived_at, dropped_at, dropped_entries, dropped_jobs
		FROM chain_archives WHERE tenant_id = ?1 AND partition_key = ?2 ORDER BY start_pos`, k.TenantID, k.PartitionKey)
	if err != nil {
		return nil, auditErr("reading the archives of "+k.TenantID+"/"+k.PartitionKey, err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.ChainArchive, error) {
		a := driver.ChainArchive{Key: k}
		var first, last, edge, root []byte
		var note string
		var archived int64
		var dropped sql.NullInt64
		if err := r.Scan(&a.StartPos, &a.EndPos, &first, &last, &a.LastTHLC, &edge, &root, &note, &archived, &dropped,
			&a.DroppedEntries, &a.DroppedJobs); err != nil {
			return a, err
		}
		copy(a.FirstPrevLink[:], first)
		copy(a.LastLink[:], last)
		copy(a.Root[:], root)
		a.TreeEdge, a.Checkpoint, a.ArchivedAt = splitHashes(edge), []byte(note), fromMS(archived)
		if dropped.Valid {
			a.DroppedAt = fromMS(dropped.Int64)
		}
		return a, nil
	})
	return out, auditErr("reading the archives of "+k.TenantID+"/"+k.PartitionKey, err)
}

// DropArchived implements driver.LogArchive. SQLite has no partitions:
// the entries are deleted, in the one write transaction.
func (s auditStore) DropArchived(ctx context.Context, p driver.DropParams) (driver.DropResult, error) {
	k := p.Key
	var res driver.DropResult
	err := s.db.inTx(ctx, fmt.Sprintf("dropping the archived entries of %s/%s from chain_pos %d", k.TenantID, k.PartitionKey, p.StartPos), func(t *txn) error {
		res = driver.DropResult{}
		var end int64
		var lastLink []byte
		var dropped sql.NullInt64
		err := t.queryRow(`SELECT end_pos, last_link, dropped_at FROM chain_archives
			WHERE tenant_id = ?1 AND partition_key = ?2 AND start_pos = ?3`, k.TenantID, k.PartitionKey, p.StartPos).
			Scan(&end, &lastLink, &dropped)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the chain has no archive starting at chain_pos %d", driver.ErrArchiveRange, p.StartPos)
		}
		if err != nil {
			return err
		}
		if dropped.Valid {
			return fmt.Errorf("%w: the archive from chain_pos %d was dropped already, at %s", driver.ErrArchiveRange, p.StartPos, fromMS(dropped.Int64).Format(time.RFC3339))
		}
		var kept int64
		err = t.queryRow(`SELECT start_pos FROM chain_archives WHERE tenant_id = ?1 AND partition_key = ?2
			AND start_pos < ?3 AND dropped_at IS NULL ORDER BY start_pos LIMIT 1`, k.TenantID, k.PartitionKey, p.StartPos).Scan(&kept)
		if err == nil {
			return fmt.Errorf("%w: the archive from chain_pos %d is still in the database; drop it first", driver.ErrArchiveRange, kept)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var count int64
		var link []byte
		if err := t.queryRow(`SELECT count(*), (SELECT link FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos = ?4 - 1)
			FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4`,
			k.TenantID, k.PartitionKey, p.StartPos, end).Scan(&count, &link); err != nil {
			return err
		}
		if count != end-p.StartPos || string(link) != string(lastLink) {
			return fmt.Errorf("%w: chain_pos %d to %d: the log holds %d entries, and the last one's link is %x, the archive's %x",
				driver.ErrArchiveMismatch, p.StartPos, end-1, count, link, lastLink)
		}
		for _, sd := range []struct{ table, id, name string }{{"jobs", "id", "jobs"}, {"job_state", "job_id", "job_state"}} {
			var id, status string
			err := t.queryRow(`SELECT x.`+sd.id+`, x.status FROM `+sd.table+` x
				WHERE x.`+sd.id+` IN (SELECT job_id FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4)
				AND x.status IN ('pending', 'scheduled', 'running') ORDER BY x.`+sd.id+` LIMIT 1`,
				k.TenantID, k.PartitionKey, p.StartPos, end).Scan(&id, &status)
			if err == nil {
				return fmt.Errorf("%w: job %s is %s (%s)", driver.ErrArchiveUnfinished, id, status, sd.name)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		var successor bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos = ?3)`,
			k.TenantID, k.PartitionKey, end).Scan(&successor); err != nil {
			return err
		}
		if !successor {
			return fmt.Errorf("%w: the archive ends with the chain's last entry (chain_pos %d), which stays in the database for the next entry to link to; drop it once the chain has grown",
				driver.ErrArchiveRange, end-1)
		}
		if _, err := t.exec(`INSERT INTO archived_jobs (tenant_id, job_id, partition_key, chain_pos, t_hlc, link, payload_hash)
			SELECT tenant_id, job_id, partition_key, chain_pos, t_hlc, link, payload_hash FROM scheduler_log
			WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4`, k.TenantID, k.PartitionKey, p.StartPos, end); err != nil {
			return err
		}
		if res.Jobs, err = t.affected(`DELETE FROM job_state WHERE job_id IN (SELECT job_id FROM scheduler_log
			WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4)`, k.TenantID, k.PartitionKey, p.StartPos, end); err != nil {
			return err
		}
		if res.Entries, err = t.affected(`DELETE FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4`,
			k.TenantID, k.PartitionKey, p.StartPos, end); err != nil {
			return err
		}
		_, err = t.exec(`UPDATE chain_archives SET dropped_at = ?4, dropped_entries = ?5, dropped_jobs = ?6
			WHERE tenant_id = ?1 AND partition_key = ?2 AND start_pos = ?3`, k.TenantID, k.PartitionKey, p.StartPos, ms(p.Now), res.Entries, res.Jobs)
		return err
	})
	return res, err
}
