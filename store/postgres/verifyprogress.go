package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/driver"
)

// ChainVerifications implements driver.VerificationProgress.
func (s auditStore) ChainVerifications(ctx context.Context, tenant string) ([]driver.ChainVerification, error) {
	// Chains come from chain_heads (one row a chain, written with a
	// chain's first append) and from the progress rows themselves, so a
	// chain whose head row was deleted is still verified.
	rows, err := s.db.Pool.Query(ctx, `SELECT * FROM (SELECT tenant_id, partition_key, verified_size, verified_link, COALESCE(verified_t_hlc, ''),
		tree_edge, checkpoint_size, last_run_at, last_valid, last_entries, last_issue_count, last_issues::text
		FROM scheduler.chain_verification WHERE $1 = '' OR tenant_id = $1
		UNION ALL
		SELECT h.tenant_id, h.partition_key, 0, NULL, '', '\x'::bytea, 0, NULL::timestamptz, false, 0, 0, '[]'
		FROM scheduler.chain_heads h WHERE ($1 = '' OR h.tenant_id = $1) AND NOT EXISTS (SELECT 1 FROM scheduler.chain_verification v
			WHERE v.tenant_id = h.tenant_id AND v.partition_key = h.partition_key)
		) u ORDER BY tenant_id COLLATE "C", partition_key COLLATE "C"`, tenant)
	if err != nil {
		return nil, wrap("reading the verification progress", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.ChainVerification, error) {
		var v driver.ChainVerification
		var link, edge []byte
		var issues string
		var at *time.Time // NULL for a chain never verified
		if err := r.Scan(&v.Key.TenantID, &v.Key.PartitionKey, &v.VerifiedSize, &link, &v.VerifiedTHLC, &edge, &v.CheckpointSize,
			&at, &v.LastValid, &v.LastEntries, &v.LastIssueCount, &issues); err != nil {
			return v, err
		}
		copy(v.VerifiedLink[:], link)
		v.TreeEdge = splitHashes(edge)
		v.LastIssues = []byte(issues)
		if at != nil {
			v.LastRunAt = *at
		}
		return v, nil
	})
	return out, wrap("reading the verification progress", err)
}

// SaveChainVerification implements driver.VerificationProgress.
func (s auditStore) SaveChainVerification(ctx context.Context, v driver.ChainVerification) error {
	var link, thlc any
	if v.VerifiedSize > 0 {
		link, thlc = v.VerifiedLink[:], v.VerifiedTHLC
	}
	issues := v.LastIssues
	if len(issues) == 0 {
		issues = []byte("[]")
	}
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO scheduler.chain_verification (tenant_id, partition_key, verified_size, verified_link,
			verified_t_hlc, tree_edge, checkpoint_size, last_run_at, last_valid, last_entries, last_issue_count, last_issues)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
		ON CONFLICT (tenant_id, partition_key) DO UPDATE SET verified_size = EXCLUDED.verified_size,
			verified_link = EXCLUDED.verified_link, verified_t_hlc = EXCLUDED.verified_t_hlc, tree_edge = EXCLUDED.tree_edge,
			checkpoint_size = EXCLUDED.checkpoint_size, last_run_at = EXCLUDED.last_run_at, last_valid = EXCLUDED.last_valid,
			last_entries = EXCLUDED.last_entries, last_issue_count = EXCLUDED.last_issue_count, last_issues = EXCLUDED.last_issues`,
		v.Key.TenantID, v.Key.PartitionKey, v.VerifiedSize, link, thlc, joinHashes(v.TreeEdge), v.CheckpointSize,
		v.LastRunAt, v.LastValid, v.LastEntries, v.LastIssueCount, string(issues))
	return wrap("saving the verification progress of "+v.Key.TenantID+"/"+v.Key.PartitionKey, err)
}

// StartedJobs implements driver.StartOrder: one range scan of
// idx_job_state_tenant_hlc.
func (s auditStore) StartedJobs(ctx context.Context, tenant string, fn func(*driver.StartedJob) error) error {
	rows, err := s.db.Pool.Query(ctx, `SELECT partition_key, kind, t_hlc, job_id, started_at FROM scheduler.job_state
		WHERE tenant_id = $1 AND started_at IS NOT NULL ORDER BY t_hlc`, tenant)
	if err != nil {
		return wrap("reading when jobs started", err)
	}
	defer rows.Close()
	var j driver.StartedJob
	var id uuid.UUID
	var at time.Time
	for rows.Next() {
		if err := rows.Scan(&j.PartitionKey, &j.Kind, &j.THLC, &id, &at); err != nil {
			return wrap("reading when jobs started", err)
		}
		j.JobID, j.StartedAt = id, at
		if err := fn(&j); err != nil {
			return err
		}
	}
	return wrap("reading when jobs started", rows.Err())
}

// joinHashes and splitHashes store a list of tree hashes as one byte
// string, 32 bytes each.
func joinHashes(hs []tlog.Hash) []byte {
	out := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		out = append(out, h[:]...)
	}
	return out
}

func splitHashes(b []byte) []tlog.Hash {
	out := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range out {
		copy(out[i][:], b[i*tlog.HashSize:])
	}
	return out
}
