package postgres

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
)

// ReadHashRange returns the stored tree hashes of chain k at every index
// from lo to hi, in index order, in one range scan of the primary key
// (audit.HashRangeReader: a level-0 tile's leaf hashes lie among 511
// consecutive indexes, which this reads faster than 256 lookups).
func (s auditStore) ReadHashRange(ctx context.Context, k chain.Key, lo, hi int64) ([]tlog.Hash, error) {
	if hi < lo {
		return nil, nil
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT hash_index, hash FROM scheduler.chain_tree_hashes
		WHERE tenant_id = $1 AND partition_key = $2 AND hash_index BETWEEN $3 AND $4 ORDER BY hash_index`, k.TenantID, k.PartitionKey, lo, hi)
	if err != nil {
		return nil, wrap("reading tree hashes", err)
	}
	out := make([]tlog.Hash, 0, hi-lo+1)
	var x int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&x, &h}, func() error {
		if x == lo+int64(len(out)) && len(h) == tlog.HashSize {
			out = append(out, tlog.Hash(h))
		}
		return nil
	})
	if err != nil {
		return nil, wrap("reading tree hashes", err)
	}
	if int64(len(out)) != hi-lo+1 {
		return nil, fmt.Errorf("postgres: tree hash %d of chain %s/%q is missing", lo+int64(len(out)), k.TenantID, k.PartitionKey)
	}
	return out, nil
}

// ReadLinks calls fn with the chain_pos and link of every entry of chain k
// whose chain_pos is in [from, to), in chain_pos order (audit.LinkReader:
// an entry bundle holds links only, so only they are read). link is valid
// during the call only.
func (s auditStore) ReadLinks(ctx context.Context, k chain.Key, from, to int64, fn func(pos int64, link []byte) error) error {
	rows, err := s.db.Pool.Query(ctx, `SELECT chain_pos, link FROM scheduler.scheduler_log
		WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos >= $3 AND chain_pos < $4 ORDER BY chain_pos`, pgx.QueryResultFormats{pgx.BinaryFormatCode}, k.TenantID, k.PartitionKey, from, to)
	if err != nil {
		return wrap("reading the chain's links", err)
	}
	defer rows.Close()
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) != 2 || len(raw[0]) != 8 {
			return fmt.Errorf("postgres: reading the chain's links: unexpected row shape")
		}
		if err := fn(int64(binary.BigEndian.Uint64(raw[0])), raw[1]); err != nil {
			return err
		}
	}
	return wrap("reading the chain's links", rows.Err())
}
