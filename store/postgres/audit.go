package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditStore returns the audit package's view of the database: streaming
// chain reads for the verifier, batch snapshots, tree hashes and
// checkpoints.
func (db *DB) AuditStore() driver.AuditStore { return auditStore{db} }

type auditStore struct{ db *DB }

var _ driver.AuditStore = auditStore{}

func (s auditStore) Chains(ctx context.Context, tenantID string) ([]chain.Key, error) {
	// A loose index scan over idx_scheduler_log_chain finds each chain
	// with one probe instead of reading every entry.
	rows, err := s.db.Pool.Query(ctx, `
		WITH RECURSIVE c AS (
			(SELECT tenant_id, partition_key FROM scheduler.scheduler_log
			 WHERE ($1 = '' OR tenant_id = $1) ORDER BY tenant_id, partition_key LIMIT 1)
			UNION ALL
			SELECT n.tenant_id, n.partition_key FROM c, LATERAL (
				SELECT tenant_id, partition_key FROM scheduler.scheduler_log l
				WHERE ($1 = '' OR l.tenant_id = $1) AND (l.tenant_id, l.partition_key) > (c.tenant_id, c.partition_key)
				ORDER BY tenant_id, partition_key LIMIT 1) n
		)
		SELECT tenant_id, partition_key FROM (
			SELECT tenant_id, partition_key FROM c
			UNION
			SELECT tenant_id, partition_key FROM scheduler.chain_heads WHERE ($1 = '' OR tenant_id = $1)
		) u ORDER BY tenant_id COLLATE "C", partition_key COLLATE "C"`, tenantID)
	if err != nil {
		return nil, wrap("listing chains", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (chain.Key, error) {
		var k chain.Key
		return k, r.Scan(&k.TenantID, &k.PartitionKey)
	})
	return keys, wrap("listing chains", err)
}

const scanCols = `seq_bigint, chain_pos, t_hlc, job_id, payload_hash, prev_link, link`

// Scan streams the rows in binary format and decodes them from the raw
// wire values, so a million-entry chain costs no allocation per row.
func (s auditStore) Scan(ctx context.Context, p driver.ScanParams, fn func(*driver.LogEntry) error) error {
	k, from, to, withPayload := p.Key, p.From, p.To, p.WithPayload
	cols := scanCols
	if withPayload {
		cols += `, kind, idempotency_key, payload`
	}
	if to < 0 {
		to = 1<<63 - 1
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+cols+` FROM scheduler.scheduler_log
		WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4
		ORDER BY chain_pos`, pgx.QueryResultFormats{pgx.BinaryFormatCode}, k.TenantID, k.PartitionKey, from, to)
	if err != nil {
		return wrap("reading the chain", err)
	}
	defer rows.Close()
	var e driver.LogEntry
	binaryPayload := false
	if fds := rows.FieldDescriptions(); withPayload && len(fds) == 10 {
		// payload is text (canonical JSON); a jsonb column, as in older
		// schemas, comes in binary format as a version byte and the text.
		binaryPayload = fds[9].Format == pgx.BinaryFormatCode && fds[9].DataTypeOID == 3802
	}
	for rows.Next() {
		v := rows.RawValues()
		if len(v[0]) != 8 || len(v[1]) != 8 || len(v[3]) != 16 {
			return errors.New("postgres: reading the chain: unexpected column encoding")
		}
		e.Seq = int64(binary.BigEndian.Uint64(v[0]))
		e.Pos = int64(binary.BigEndian.Uint64(v[1]))
		e.THLC = v[2]
		copy(e.JobID[:], v[3])
		e.PayloadHash, e.PrevLink, e.Link = v[4], v[5], v[6]
		if withPayload {
			e.Kind, e.IdempotencyKey, e.HasKey = v[7], v[8], v[8] != nil
			p := v[9]
			if binaryPayload {
				if len(p) == 0 || p[0] != 1 { // jsonb binary format: version 1, then the text
					return errors.New("postgres: reading the chain: unexpected jsonb encoding")
				}
				p = p[1:]
			}
			e.Payload = p
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return wrap("reading the chain", rows.Err())
}

func (s auditStore) Head(ctx context.Context, k chain.Key) (driver.HeadRow, bool, error) {
	var h driver.HeadRow
	err := s.db.Pool.QueryRow(ctx, `SELECT last_link, last_t_hlc, entry_count FROM scheduler.chain_heads
		WHERE tenant_id = $1 AND partition_key = $2`, k.TenantID, k.PartitionKey).Scan(&h.LastLink, &h.LastTHLC, &h.EntryCount)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, false, nil
	}
	return h, err == nil, wrap("reading the chain head", err)
}

func (s auditStore) Duplicates(ctx context.Context, k chain.Key, candidates []uuid.UUID) ([]driver.Duplicate, error) {
	q := `SELECT job_id, count(*) FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2
		GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`
	args := []any{k.TenantID, k.PartitionKey}
	if candidates != nil {
		q = `SELECT job_id, count(*) FROM scheduler.scheduler_log WHERE job_id = ANY($3) AND tenant_id = $1 AND partition_key = $2
			GROUP BY job_id HAVING count(*) > 1 ORDER BY job_id`
		args = append(args, candidates)
	}
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("finding duplicate job ids", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.Duplicate, error) {
		var d driver.Duplicate
		return d, r.Scan(&d.JobID, &d.Count)
	})
	return out, wrap("finding duplicate job ids", err)
}

func (s auditStore) FindJob(ctx context.Context, r driver.JobRef) ([]driver.Located, error) {
	id := r.JobID
	rows, err := s.db.Pool.Query(ctx, `SELECT tenant_id, partition_key, chain_pos, seq_bigint, t_hlc, job_id, payload_hash, prev_link, link
		FROM scheduler.scheduler_log WHERE job_id = $1 AND ($2 = '' OR tenant_id = $2) ORDER BY tenant_id, partition_key, chain_pos`, id, r.TenantID)
	if err != nil {
		return nil, wrap("finding a job in the log", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.Located, error) {
		var l driver.Located
		var ph, prev, link []byte
		if err := r.Scan(&l.Key.TenantID, &l.Key.PartitionKey, &l.Pos, &l.Seq, &l.THLC, &l.JobID, &ph, &prev, &link); err != nil {
			return l, err
		}
		copy(l.PayloadHash[:], ph)
		copy(l.PrevLink[:], prev)
		copy(l.Link[:], link)
		return l, nil
	})
	return out, wrap("finding a job in the log", err)
}

func (s auditStore) PosOf(ctx context.Context, k chain.Key, tHLC string) (int64, bool, error) {
	var pos int64
	err := s.db.Pool.QueryRow(ctx, `SELECT chain_pos FROM scheduler.scheduler_log
		WHERE tenant_id = $1 AND t_hlc = $2 AND partition_key = $3 ORDER BY chain_pos LIMIT 1`, k.TenantID, tHLC, k.PartitionKey).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return pos, err == nil, wrap("finding an entry by t_hlc", err)
}

func (s auditStore) InsertSnapshot(ctx context.Context, sn *driver.Snapshot) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO scheduler.batch_snapshot (batch_id, tenant_id, partition_key, snapshot_hlc,
		from_chain_pos, to_chain_pos, from_chain_link, to_chain_link, entry_count, merkle_root, envelope, key_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		sn.BatchID, sn.Key.TenantID, sn.Key.PartitionKey, sn.SnapshotHLC, sn.FromPos, sn.ToPos, sn.FromLink[:], sn.ToLink[:],
		sn.EntryCount, sn.MerkleRoot[:], string(sn.Envelope), sn.KeyID, sn.CreatedAt)
	return wrap("storing a batch snapshot", err)
}

func (s auditStore) Snapshots(ctx context.Context, f driver.SnapshotFilter) ([]driver.Snapshot, error) {
	q := `SELECT batch_id, tenant_id, partition_key, snapshot_hlc, from_chain_pos, to_chain_pos, from_chain_link, to_chain_link,
		entry_count, merkle_root, envelope::text, key_id, created_at FROM scheduler.batch_snapshot WHERE true`
	var args []any
	if f.BatchID != uuid.Nil {
		args = append(args, f.BatchID)
		q += fmt.Sprintf(` AND batch_id = $%d`, len(args))
	}
	if f.TenantID != "" {
		args = append(args, f.TenantID)
		q += fmt.Sprintf(` AND tenant_id = $%d`, len(args))
	}
	if f.PartitionKey != nil {
		args = append(args, *f.PartitionKey)
		q += fmt.Sprintf(` AND partition_key = $%d`, len(args))
	}
	q += ` ORDER BY snapshot_hlc, created_at, batch_id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("listing batch snapshots", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.Snapshot, error) {
		var sn driver.Snapshot
		var from, to, root []byte
		var env string
		if err := r.Scan(&sn.BatchID, &sn.Key.TenantID, &sn.Key.PartitionKey, &sn.SnapshotHLC, &sn.FromPos, &sn.ToPos,
			&from, &to, &sn.EntryCount, &root, &env, &sn.KeyID, &sn.CreatedAt); err != nil {
			return sn, err
		}
		copy(sn.FromLink[:], from)
		copy(sn.ToLink[:], to)
		copy(sn.MerkleRoot[:], root)
		sn.Envelope = []byte(env)
		return sn, nil
	})
	return out, wrap("listing batch snapshots", err)
}

func (s auditStore) TreeSize(ctx context.Context, k chain.Key) (int64, error) {
	var n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT tree_size FROM scheduler.chain_trees WHERE tenant_id = $1 AND partition_key = $2`,
		k.TenantID, k.PartitionKey).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, wrap("reading the tree size", err)
}

func (s auditStore) ReadHashes(ctx context.Context, k chain.Key, indexes []int64) ([]tlog.Hash, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT hash_index, hash FROM scheduler.chain_tree_hashes
		WHERE tenant_id = $1 AND partition_key = $2 AND hash_index = ANY($3)`, k.TenantID, k.PartitionKey, indexes)
	if err != nil {
		return nil, wrap("reading tree hashes", err)
	}
	got := make(map[int64]tlog.Hash, len(indexes))
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		var x tlog.Hash
		copy(x[:], h)
		got[idx] = x
		return nil
	})
	if err != nil {
		return nil, wrap("reading tree hashes", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("postgres: tree hash %d of chain %s/%q is missing", x, k.TenantID, k.PartitionKey)
		}
		out[i] = h
	}
	return out, nil
}

func (s auditStore) AppendHashes(ctx context.Context, p driver.AppendHashesParams) error {
	k, oldSize, newSize, hashes := p.Key, p.OldSize, p.NewSize, p.Hashes
	return s.db.inTx(ctx, "storing tree hashes", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO scheduler.chain_trees (tenant_id, partition_key, tree_size, updated_at)
			VALUES ($1, $2, $4, now())
			ON CONFLICT (tenant_id, partition_key) DO UPDATE SET tree_size = $4, updated_at = now()
			WHERE scheduler.chain_trees.tree_size = $3`, k.TenantID, k.PartitionKey, oldSize, newSize)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return driver.ErrTreeMoved
		}
		if oldSize == 0 {
			// A fresh tree: the insert above took the row, so no other
			// writer can have stored hashes for it; clear leftovers.
			if _, err := tx.Exec(ctx, `DELETE FROM scheduler.chain_tree_hashes WHERE tenant_id = $1 AND partition_key = $2`, k.TenantID, k.PartitionKey); err != nil {
				return err
			}
		}
		first := tlog.StoredHashCount(oldSize)
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"scheduler", "chain_tree_hashes"}, []string{"tenant_id", "partition_key", "hash_index", "hash"},
			pgx.CopyFromSlice(len(hashes), func(i int) ([]any, error) {
				return []any{k.TenantID, k.PartitionKey, first + int64(i), hashes[i][:]}, nil
			}))
		return err
	})
}

// TreesBehind counts each chain's entries from its last log entry:
// chain_heads may trail it by HeadRefreshInterval.
func (s auditStore) TreesBehind(ctx context.Context) ([]driver.TreeProgress, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT h.tenant_id, h.partition_key, COALESCE(l.n, 0), COALESCE(t.tree_size, 0)
		FROM scheduler.chain_heads h
		LEFT JOIN LATERAL (SELECT chain_pos + 1 AS n FROM scheduler.scheduler_log l
			WHERE l.tenant_id = h.tenant_id AND l.partition_key = h.partition_key ORDER BY chain_pos DESC LIMIT 1) l ON true
		LEFT JOIN scheduler.chain_trees t USING (tenant_id, partition_key)
		WHERE COALESCE(l.n, 0) > COALESCE(t.tree_size, 0)
		   OR COALESCE(t.tree_size, 0) > COALESCE((SELECT max(c.tree_size) FROM scheduler.chain_checkpoints c
				WHERE c.tenant_id = h.tenant_id AND c.partition_key = h.partition_key), 0)
		ORDER BY h.tenant_id COLLATE "C", h.partition_key COLLATE "C"`)
	if err != nil {
		return nil, wrap("listing chains to checkpoint", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.TreeProgress, error) {
		var p driver.TreeProgress
		return p, r.Scan(&p.Key.TenantID, &p.Key.PartitionKey, &p.Entries, &p.TreeSize)
	})
	return out, wrap("listing chains to checkpoint", err)
}

func (s auditStore) InsertCheckpoint(ctx context.Context, c *driver.Checkpoint) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO scheduler.chain_checkpoints (tenant_id, partition_key, tree_size, root_hash, note, key_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		c.Key.TenantID, c.Key.PartitionKey, c.Size, c.Root[:], string(c.Note), c.KeyName, c.CreatedAt)
	return wrap("storing a checkpoint", err)
}

func (s auditStore) Checkpoints(ctx context.Context, k chain.Key, limit int) ([]driver.Checkpoint, error) {
	q := `SELECT tree_size, root_hash, note, key_id, created_at FROM scheduler.chain_checkpoints
		WHERE tenant_id = $1 AND partition_key = $2 ORDER BY tree_size DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.db.Pool.Query(ctx, q, k.TenantID, k.PartitionKey)
	if err != nil {
		return nil, wrap("reading checkpoints", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.Checkpoint, error) {
		c := driver.Checkpoint{Key: k}
		var root []byte
		var note string
		var created time.Time
		if err := r.Scan(&c.Size, &root, &note, &c.KeyName, &created); err != nil {
			return c, err
		}
		copy(c.Root[:], root)
		c.Note, c.CreatedAt = []byte(note), created
		return c, nil
	})
	return out, wrap("reading checkpoints", err)
}

func (s auditStore) InsertCosignature(ctx context.Context, c *driver.Cosignature) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO scheduler.chain_cosignatures (tenant_id, partition_key, tree_size, witness_key_id, signature_line, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		c.Key.TenantID, c.Key.PartitionKey, c.Size, c.WitnessKeyID, c.SignatureLine, c.CreatedAt)
	return wrap("storing a cosignature", err)
}

func (s auditStore) Cosignatures(ctx context.Context, k chain.Key, size int64) ([]driver.Cosignature, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT witness_key_id, signature_line, created_at FROM scheduler.chain_cosignatures
		WHERE tenant_id = $1 AND partition_key = $2 AND tree_size = $3 ORDER BY witness_key_id`, k.TenantID, k.PartitionKey, size)
	if err != nil {
		return nil, wrap("reading cosignatures", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.Cosignature, error) {
		c := driver.Cosignature{Key: k, Size: size}
		err := r.Scan(&c.WitnessKeyID, &c.SignatureLine, &c.CreatedAt)
		return c, err
	})
	return out, wrap("reading cosignatures", err)
}

func (s auditStore) WitnessedSize(ctx context.Context, k chain.Key, witnessKeyID string) (int64, error) {
	var size int64
	err := s.db.Pool.QueryRow(ctx, `SELECT COALESCE(MAX(tree_size), 0) FROM scheduler.chain_cosignatures
		WHERE tenant_id = $1 AND partition_key = $2 AND witness_key_id = $3`, k.TenantID, k.PartitionKey, witnessKeyID).Scan(&size)
	return size, wrap("reading a witness's cosigned size", err)
}

var _ driver.CosignatureStore = auditStore{}
