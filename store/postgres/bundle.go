package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
)

// ExportEntries implements driver.AuditStore.
func (s auditStore) ExportEntries(ctx context.Context, p driver.ExportParams) ([]driver.ExportedEntry, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT job_id, tenant_id, partition_key, kind, payload::text, priority, max_attempts, created_at, run_at,
		       seq_bigint, chain_pos, t_hlc, payload_hash, prev_link, link, COALESCE(idempotency_key, ''), node_id,
		       source_node, source_t_hlc, source_prev_link, source_link
		FROM scheduler.scheduler_log
		WHERE tenant_id = $1 AND partition_key = $2 AND t_hlc > $3 AND ($4 = '' OR node_id = $4)
			AND chain_pos >= $5 AND ($6 = 0 OR chain_pos < $6)
		ORDER BY chain_pos`, p.Key.TenantID, p.Key.PartitionKey, p.AfterTHLC, p.Node, p.FromPos, p.ToPos)
	if err != nil {
		return nil, wrap("exporting the chain", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.ExportedEntry, error) {
		var e driver.ExportedEntry
		var payload string
		var hash, prev, link, srcPrev, srcLink []byte
		var srcNode, srcTHLC *string
		err := r.Scan(&e.JobID, &e.TenantID, &e.PartitionKey, &e.Kind, &payload, &e.Priority, &e.MaxAttempts, &e.CreatedAt, &e.RunAt,
			&e.Entry.Seq, &e.Entry.Pos, &e.Entry.THLC, &hash, &prev, &link, &e.IdempotencyKey, &e.Node,
			&srcNode, &srcTHLC, &srcPrev, &srcLink)
		e.Payload = []byte(payload)
		fillChainEntry(&e.Entry, e.Payload, hash, prev, link, nil, nil)
		e.Source = driver.ReadImportSource(srcNode, srcTHLC, srcPrev, srcLink)
		return e, err
	})
	return out, wrap("exporting the chain", err)
}

// LastTHLC implements driver.AuditStore: one probe of
// idx_scheduler_log_tenant_hlc.
func (s auditStore) LastTHLC(ctx context.Context, tenantID string) (string, error) {
	var t *string
	err := s.db.Pool.QueryRow(ctx, `SELECT max(t_hlc) FROM scheduler.scheduler_log WHERE tenant_id = $1`, tenantID).Scan(&t)
	if err != nil || t == nil {
		return "", wrap("reading the tenant's last t_hlc", err)
	}
	return *t, nil
}
