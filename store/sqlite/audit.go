package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// AuditStore returns the audit package's view of the database: streaming
// chain reads for the verifier, batch snapshots, tree hashes and
// checkpoints.
//
// The DB has one connection: while Scan runs, its callback must not use
// the DB (the audit package never does).
func (db *DB) AuditStore() driver.AuditStore { return auditStore{db} }

type auditStore struct{ db *DB }

var _ driver.AuditStore = auditStore{}

func auditErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

func (s auditStore) Chains(ctx context.Context, tenantID string) ([]chain.Key, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `
		SELECT DISTINCT tenant_id, partition_key FROM scheduler_log WHERE (?1 = '' OR tenant_id = ?1)
		UNION
		SELECT tenant_id, partition_key FROM chain_heads WHERE (?1 = '' OR tenant_id = ?1)
		ORDER BY 1, 2`, tenantID)
	if err != nil {
		return nil, auditErr("listing chains", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (chain.Key, error) {
		var k chain.Key
		err := r.Scan(&k.TenantID, &k.PartitionKey)
		return k, err
	})
	return out, auditErr("listing chains", err)
}

func (s auditStore) Scan(ctx context.Context, p driver.ScanParams, fn func(*driver.LogEntry) error) error {
	k, from, to, withPayload := p.Key, p.From, p.To, p.WithPayload
	cols := `seq_bigint, chain_pos, t_hlc, job_id, payload_hash, prev_link, link`
	if withPayload {
		cols += `, kind, idempotency_key, payload`
	}
	if to < 0 {
		to = 1<<63 - 1
	}
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+cols+` FROM scheduler_log
		WHERE tenant_id = ?1 AND partition_key = ?2 AND chain_pos >= ?3 AND chain_pos < ?4 ORDER BY chain_pos`,
		k.TenantID, k.PartitionKey, from, to)
	if err != nil {
		return auditErr("reading the chain", err)
	}
	defer rows.Close()
	var e driver.LogEntry
	var thlc, id, ph, prev, link, kind, key, payload sql.RawBytes
	dest := []any{&e.Seq, &e.Pos, &thlc, &id, &ph, &prev, &link}
	if withPayload {
		dest = append(dest, &kind, &key, &payload)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return auditErr("reading the chain", err)
		}
		if e.JobID, err = uuid.ParseBytes(id); err != nil {
			// Kept as the zero id: the verifier reports the job id mismatch.
			e.JobID = uuid.Nil
		}
		e.THLC, e.PayloadHash, e.PrevLink, e.Link = thlc, ph, prev, link
		if withPayload {
			e.Kind, e.IdempotencyKey, e.HasKey, e.Payload = kind, key, key != nil, payload
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return auditErr("reading the chain", rows.Err())
}

func (s auditStore) Head(ctx context.Context, k chain.Key) (driver.HeadRow, bool, error) {
	var h driver.HeadRow
	err := s.db.SQL.QueryRowContext(ctx, `SELECT last_link, last_t_hlc, entry_count FROM chain_heads
		WHERE tenant_id = ?1 AND partition_key = ?2`, k.TenantID, k.PartitionKey).Scan(&h.LastLink, &h.LastTHLC, &h.EntryCount)
	if errors.Is(err, sql.ErrNoRows) {
		return h, false, nil
	}
	return h, err == nil, auditErr("reading the chain head", err)
}

func (s auditStore) Duplicates(ctx context.Context, k chain.Key, candidates []uuid.UUID) ([]driver.Duplicate, error) {
	q := `SELECT job_id, count(*) FROM scheduler_log WHERE tenant_id = ?1 AND partition_key = ?2
		GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`
	args := []any{k.TenantID, k.PartitionKey}
	if candidates != nil {
		if len(candidates) == 0 {
			return nil, nil
		}
		ph := make([]string, len(candidates))
		for i, c := range candidates {
			ph[i] = fmt.Sprintf("?%d", i+3)
			args = append(args, c.String())
		}
		q = `SELECT job_id, count(*) FROM scheduler_log WHERE job_id IN (` + strings.Join(ph, ",") + `)
			AND tenant_id = ?1 AND partition_key = ?2 GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`
	}
	rows, err := s.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, auditErr("finding duplicate job ids", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.Duplicate, error) {
		var d driver.Duplicate
		var id string
		if err := r.Scan(&id, &d.Count); err != nil {
			return d, err
		}
		d.JobID, _ = uuid.Parse(id)
		return d, nil
	})
	return out, auditErr("finding duplicate job ids", err)
}

func (s auditStore) FindJob(ctx context.Context, r driver.JobRef) ([]driver.Located, error) {
	id := r.JobID
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT tenant_id, partition_key, chain_pos, seq_bigint, t_hlc, job_id, payload_hash, prev_link, link
		FROM scheduler_log WHERE job_id = ?1 AND (?2 = '' OR tenant_id = ?2) ORDER BY tenant_id, partition_key, chain_pos`, id.String(), r.TenantID)
	if err != nil {
		return nil, auditErr("finding a job in the log", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.Located, error) {
		var l driver.Located
		var jid string
		var ph, prev, link []byte
		if err := r.Scan(&l.Key.TenantID, &l.Key.PartitionKey, &l.Pos, &l.Seq, &l.THLC, &jid, &ph, &prev, &link); err != nil {
			return l, err
		}
		l.JobID, _ = uuid.Parse(jid)
		copy(l.PayloadHash[:], ph)
		copy(l.PrevLink[:], prev)
		copy(l.Link[:], link)
		return l, nil
	})
	return out, auditErr("finding a job in the log", err)
}

func (s auditStore) PosOf(ctx context.Context, k chain.Key, tHLC string) (int64, bool, error) {
	var pos int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT chain_pos FROM scheduler_log
		WHERE tenant_id = ?1 AND t_hlc = ?2 AND partition_key = ?3 ORDER BY chain_pos LIMIT 1`, k.TenantID, tHLC, k.PartitionKey).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return pos, err == nil, auditErr("finding an entry by t_hlc", err)
}

func (s auditStore) InsertSnapshot(ctx context.Context, sn *driver.Snapshot) error {
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return auditErr("storing a batch snapshot", err)
	}
	defer tx.Rollback()
	if _, err = tx.ExecContext(ctx, `INSERT INTO batch_snapshot (batch_id, tenant_id, partition_key, snapshot_hlc,
		from_chain_pos, to_chain_pos, from_chain_link, to_chain_link, entry_count, merkle_root, envelope, key_id, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)`,
		sn.BatchID.String(), sn.Key.TenantID, sn.Key.PartitionKey, sn.SnapshotHLC, sn.FromPos, sn.ToPos, sn.FromLink[:], sn.ToLink[:],
		sn.EntryCount, sn.MerkleRoot[:], string(sn.Envelope), sn.KeyID, sn.CreatedAt.UnixMilli()); err != nil {
		return auditErr("storing a batch snapshot", err)
	}
	// snapshot_hlc is a timestamp this store now holds: its node's clock
	// bound commits with it (hlc.StateStore.BoundWrittenWithData), as for log entries.
	if ts, perr := hlc.Parse(sn.SnapshotHLC); perr == nil {
		if _, err = tx.ExecContext(ctx, saveBound, ts.Node, ts.Physical+1, s.db.Now().UnixMilli()); err != nil {
			return auditErr("storing a batch snapshot", err)
		}
	}
	return auditErr("storing a batch snapshot", tx.Commit())
}

func (s auditStore) Snapshots(ctx context.Context, f driver.SnapshotFilter) ([]driver.Snapshot, error) {
	q := `SELECT batch_id, tenant_id, partition_key, snapshot_hlc, from_chain_pos, to_chain_pos, from_chain_link, to_chain_link,
		entry_count, merkle_root, envelope, key_id, created_at FROM batch_snapshot WHERE 1`
	var args []any
	if f.BatchID != uuid.Nil {
		args = append(args, f.BatchID.String())
		q += fmt.Sprintf(` AND batch_id = ?%d`, len(args))
	}
	if f.TenantID != "" {
		args = append(args, f.TenantID)
		q += fmt.Sprintf(` AND tenant_id = ?%d`, len(args))
	}
	if f.PartitionKey != nil {
		args = append(args, *f.PartitionKey)
		q += fmt.Sprintf(` AND partition_key = ?%d`, len(args))
	}
	q += ` ORDER BY snapshot_hlc, created_at, batch_id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, auditErr("listing batch snapshots", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.Snapshot, error) {
		var sn driver.Snapshot
		var id, env string
		var from, to, root []byte
		var created int64
		if err := r.Scan(&id, &sn.Key.TenantID, &sn.Key.PartitionKey, &sn.SnapshotHLC, &sn.FromPos, &sn.ToPos,
			&from, &to, &sn.EntryCount, &root, &env, &sn.KeyID, &created); err != nil {
			return sn, err
		}
		sn.BatchID, _ = uuid.Parse(id)
		copy(sn.FromLink[:], from)
		copy(sn.ToLink[:], to)
		copy(sn.MerkleRoot[:], root)
		sn.Envelope, sn.CreatedAt = []byte(env), time.UnixMilli(created)
		return sn, nil
	})
	return out, auditErr("listing batch snapshots", err)
}

func (s auditStore) TreeSize(ctx context.Context, k chain.Key) (int64, error) {
	var n int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT tree_size FROM chain_trees WHERE tenant_id = ?1 AND partition_key = ?2`,
		k.TenantID, k.PartitionKey).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, auditErr("reading the tree size", err)
}

func (s auditStore) ReadHashes(ctx context.Context, k chain.Key, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	got := make(map[int64]tlog.Hash, len(indexes))
	const page = 500 // bound the number of SQL variables
	for lo := 0; lo < len(indexes); lo += page {
		part := indexes[lo:min(len(indexes), lo+page)]
		args := []any{k.TenantID, k.PartitionKey}
		ph := make([]string, len(part))
		for i, x := range part {
			ph[i] = fmt.Sprintf("?%d", i+3)
			args = append(args, x)
		}
		rows, err := s.db.SQL.QueryContext(ctx, `SELECT hash_index, hash FROM chain_tree_hashes
			WHERE tenant_id = ?1 AND partition_key = ?2 AND hash_index IN (`+strings.Join(ph, ",")+`)`, args...)
		if err != nil {
			return nil, auditErr("reading tree hashes", err)
		}
		for rows.Next() {
			var x int64
			var h []byte
			if err := rows.Scan(&x, &h); err != nil {
				rows.Close()
				return nil, auditErr("reading tree hashes", err)
			}
			var th tlog.Hash
			copy(th[:], h)
			got[x] = th
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, auditErr("reading tree hashes", err)
		}
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("sqlite: tree hash %d of chain %s/%q is missing", x, k.TenantID, k.PartitionKey)
		}
		out[i] = h
	}
	return out, nil
}

func (s auditStore) AppendHashes(ctx context.Context, p driver.AppendHashesParams) (err error) {
	k, oldSize, newSize, hashes := p.Key, p.OldSize, p.NewSize, p.Hashes
	tx, err := s.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return auditErr("storing tree hashes", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
			if !errors.Is(err, driver.ErrTreeMoved) {
				err = auditErr("storing tree hashes", err)
			}
		}
	}()
	now := time.Now().UnixMilli()
	if s.db.Now != nil {
		now = s.db.Now().UnixMilli()
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO chain_trees (tenant_id, partition_key, tree_size, updated_at) VALUES (?1, ?2, ?4, ?5)
		ON CONFLICT (tenant_id, partition_key) DO UPDATE SET tree_size = ?4, updated_at = ?5 WHERE chain_trees.tree_size = ?3`,
		k.TenantID, k.PartitionKey, oldSize, newSize, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err == nil {
			err = driver.ErrTreeMoved
		}
		return err
	}
	if oldSize == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM chain_tree_hashes WHERE tenant_id = ?1 AND partition_key = ?2`, k.TenantID, k.PartitionKey); err != nil {
			return err
		}
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO chain_tree_hashes (tenant_id, partition_key, hash_index, hash) VALUES (?1, ?2, ?3, ?4)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	first := tlog.StoredHashCount(oldSize)
	for i, h := range hashes {
		if _, err := stmt.ExecContext(ctx, k.TenantID, k.PartitionKey, first+int64(i), h[:]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s auditStore) TreesBehind(ctx context.Context) ([]driver.TreeProgress, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `
		SELECT h.tenant_id, h.partition_key, h.entry_count, COALESCE(t.tree_size, 0)
		FROM chain_heads h LEFT JOIN chain_trees t USING (tenant_id, partition_key)
		WHERE h.entry_count > COALESCE(t.tree_size, 0)
		   OR COALESCE(t.tree_size, 0) > COALESCE((SELECT max(c.tree_size) FROM chain_checkpoints c
				WHERE c.tenant_id = h.tenant_id AND c.partition_key = h.partition_key), 0)
		ORDER BY h.tenant_id, h.partition_key`)
	if err != nil {
		return nil, auditErr("listing chains to checkpoint", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.TreeProgress, error) {
		var p driver.TreeProgress
		err := r.Scan(&p.Key.TenantID, &p.Key.PartitionKey, &p.Entries, &p.TreeSize)
		return p, err
	})
	return out, auditErr("listing chains to checkpoint", err)
}

func (s auditStore) InsertCheckpoint(ctx context.Context, c *driver.Checkpoint) error {
	_, err := s.db.SQL.ExecContext(ctx, `INSERT INTO chain_checkpoints (tenant_id, partition_key, tree_size, root_hash, note, key_id, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING`,
		c.Key.TenantID, c.Key.PartitionKey, c.Size, c.Root[:], string(c.Note), c.KeyName, c.CreatedAt.UnixMilli())
	return auditErr("storing a checkpoint", err)
}

func (s auditStore) Checkpoints(ctx context.Context, k chain.Key, limit int) ([]driver.Checkpoint, error) {
	q := `SELECT tree_size, root_hash, note, key_id, created_at FROM chain_checkpoints
		WHERE tenant_id = ?1 AND partition_key = ?2 ORDER BY tree_size DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.db.SQL.QueryContext(ctx, q, k.TenantID, k.PartitionKey)
	if err != nil {
		return nil, auditErr("reading checkpoints", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.Checkpoint, error) {
		c := driver.Checkpoint{Key: k}
		var root []byte
		var note string
		var created int64
		if err := r.Scan(&c.Size, &root, &note, &c.KeyName, &created); err != nil {
			return c, err
		}
		copy(c.Root[:], root)
		c.Note, c.CreatedAt = []byte(note), time.UnixMilli(created)
		return c, nil
	})
	return out, auditErr("reading checkpoints", err)
}

func (s auditStore) InsertCosignature(ctx context.Context, c *driver.Cosignature) error {
	_, err := s.db.SQL.ExecContext(ctx, `INSERT INTO chain_cosignatures (tenant_id, partition_key, tree_size, witness_key_id, signature_line, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING`,
		c.Key.TenantID, c.Key.PartitionKey, c.Size, c.WitnessKeyID, c.SignatureLine, c.CreatedAt.UnixMilli())
	return auditErr("storing a cosignature", err)
}

func (s auditStore) Cosignatures(ctx context.Context, k chain.Key, size int64) ([]driver.Cosignature, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT witness_key_id, signature_line, created_at FROM chain_cosignatures
		WHERE tenant_id = ?1 AND partition_key = ?2 AND tree_size = ?3 ORDER BY witness_key_id`, k.TenantID, k.PartitionKey, size)
	if err != nil {
		return nil, auditErr("reading cosignatures", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.Cosignature, error) {
		c := driver.Cosignature{Key: k, Size: size}
		var created int64
		err := r.Scan(&c.WitnessKeyID, &c.SignatureLine, &created)
		c.CreatedAt = time.UnixMilli(created)
		return c, err
	})
	return out, auditErr("reading cosignatures", err)
}

func (s auditStore) WitnessedSize(ctx context.Context, k chain.Key, witnessKeyID string) (int64, error) {
	var size int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT COALESCE(MAX(tree_size), 0) FROM chain_cosignatures
		WHERE tenant_id = ?1 AND partition_key = ?2 AND witness_key_id = ?3`, k.TenantID, k.PartitionKey, witnessKeyID).Scan(&size)
	return size, auditErr("reading a witness's cosigned size", err)
}

var _ driver.CosignatureStore = auditStore{}
