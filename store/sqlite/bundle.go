package sqlite

import (
	"context"
	"database/sql"

	"github.com/ordo-sched/ordo/driver"
)

// ExportEntries implements driver.AuditStore.
func (s auditStore) ExportEntries(ctx context.Context, p driver.ExportParams) ([]driver.ExportedEntry, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `
		SELECT job_id, tenant_id, partition_key, kind, payload, priority, max_attempts, created_at, run_at,
		       seq_bigint, chain_pos, t_hlc, payload_hash, prev_link, link, COALESCE(idempotency_key, ''), node_id,
		       source_node, source_t_hlc, source_prev_link, source_link
		FROM scheduler_log
		WHERE tenant_id = ?1 AND partition_key = ?2 AND t_hlc > ?3 AND (?4 = '' OR node_id = ?4)
			AND chain_pos >= ?5 AND (?6 = 0 OR chain_pos < ?6)
		ORDER BY chain_pos`, p.Key.TenantID, p.Key.PartitionKey, p.AfterTHLC, p.Node, p.FromPos, p.ToPos)
	if err != nil {
		return nil, auditErr("exporting the chain", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.ExportedEntry, error) {
		var e driver.ExportedEntry
		var payload string
		var created, runAt int64
		var hash, prev, link, srcPrev, srcLink []byte
		var srcNode, srcTHLC *string
		if err := r.Scan(&e.JobID, &e.TenantID, &e.PartitionKey, &e.Kind, &payload, &e.Priority, &e.MaxAttempts, &created, &runAt,
			&e.Entry.Seq, &e.Entry.Pos, &e.Entry.THLC, &hash, &prev, &link, &e.IdempotencyKey, &e.Node,
			&srcNode, &srcTHLC, &srcPrev, &srcLink); err != nil {
			return e, err
		}
		e.Payload, e.CreatedAt, e.RunAt = []byte(payload), fromMS(created), fromMS(runAt)
		e.Source = driver.ReadImportSource(srcNode, srcTHLC, srcPrev, srcLink)
		e.Entry.Payload = e.Payload
		e.Entry.SetStoredHashes(hash, prev, link)
		return e, nil
	})
	return out, auditErr("exporting the chain", err)
}

// LastTHLC implements driver.AuditStore.
func (s auditStore) LastTHLC(ctx context.Context, tenantID string) (string, error) {
	var t sql.NullString
	err := s.db.SQL.QueryRowContext(ctx, `SELECT max(t_hlc) FROM scheduler_log WHERE tenant_id = ?1`, tenantID).Scan(&t)
	return t.String, auditErr("reading the tenant's last t_hlc", err)
}
