package sqlite

import (
	"context"
	"database/sql"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/driver"
)

// ChainVerifications implements driver.VerificationProgress.
func (s auditStore) ChainVerifications(ctx context.Context, tenant string) ([]driver.ChainVerification, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT tenant_id, partition_key, verified_size, verified_link, COALESCE(verified_t_hlc, ''),
		tree_edge, checkpoint_size, last_run_at, last_valid, last_entries, last_issue_count, last_issues
		FROM chain_verification WHERE ?1 = '' OR tenant_id = ?1
		UNION ALL
		SELECT h.tenant_id, h.partition_key, 0, NULL, '', x'', 0, NULL, 0, 0, 0, '[]'
		FROM chain_heads h WHERE (?1 = '' OR h.tenant_id = ?1) AND NOT EXISTS (SELECT 1 FROM chain_verification v
			WHERE v.tenant_id = h.tenant_id AND v.partition_key = h.partition_key)
		ORDER BY 1, 2`, tenant)
	if err != nil {
		return nil, auditErr("reading the verification progress", err)
	}
	out, err := collectRows(rows, func(r *sql.Rows) (driver.ChainVerification, error) {
		var v driver.ChainVerification
		var link, edge []byte
		var issues string
		var at sql.NullInt64 // NULL for a chain never verified
		if err := r.Scan(&v.Key.TenantID, &v.Key.PartitionKey, &v.VerifiedSize, &link, &v.VerifiedTHLC, &edge, &v.CheckpointSize,
			&at, &v.LastValid, &v.LastEntries, &v.LastIssueCount, &issues); err != nil {
			return v, err
		}
		copy(v.VerifiedLink[:], link)
		v.TreeEdge = splitHashes(edge)
		v.LastIssues = []byte(issues)
		if at.Valid {
			v.LastRunAt = fromMS(at.Int64)
		}
		return v, nil
	})
	return out, auditErr("reading the verification progress", err)
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
	return s.db.inTx(ctx, "saving the verification progress of "+v.Key.TenantID+"/"+v.Key.PartitionKey, func(t *txn) error {
		_, err := t.exec(`INSERT INTO chain_verification (tenant_id, partition_key, verified_size, verified_link,
				verified_t_hlc, tree_edge, checkpoint_size, last_run_at, last_valid, last_entries, last_issue_count, last_issues)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
			ON CONFLICT (tenant_id, partition_key) DO UPDATE SET verified_size = excluded.verified_size,
				verified_link = excluded.verified_link, verified_t_hlc = excluded.verified_t_hlc, tree_edge = excluded.tree_edge,
				checkpoint_size = excluded.checkpoint_size, last_run_at = excluded.last_run_at, last_valid = excluded.last_valid,
				last_entries = excluded.last_entries, last_issue_count = excluded.last_issue_count, last_issues = excluded.last_issues`,
			v.Key.TenantID, v.Key.PartitionKey, v.VerifiedSize, link, thlc, joinHashes(v.TreeEdge), v.CheckpointSize,
			ms(v.LastRunAt), v.LastValid, v.LastEntries, v.LastIssueCount, string(issues))
		return err
	})
}

// StartedJobs implements driver.StartOrder: one range scan of
// idx_job_state_tenant_hlc. fn must not query the database: the rows
// hold SQLite's connection.
func (s auditStore) StartedJobs(ctx context.Context, tenant string, fn func(*driver.StartedJob) error) error {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT partition_key, kind, t_hlc, job_id, started_at FROM job_state
		WHERE tenant_id = ?1 AND started_at IS NOT NULL ORDER BY t_hlc`, tenant)
	if err != nil {
		return auditErr("reading when jobs started", err)
	}
	defer rows.Close()
	var j driver.StartedJob
	var id string
	var at int64
	for rows.Next() {
		if err := rows.Scan(&j.PartitionKey, &j.Kind, &j.THLC, &id, &at); err != nil {
			return auditErr("reading when jobs started", err)
		}
		if j.JobID, err = uuid.Parse(id); err != nil {
			return auditErr("reading when jobs started", err)
		}
		j.StartedAt = fromMS(at)
		if err := fn(&j); err != nil {
			return err
		}
	}
	return auditErr("reading when jobs started", rows.Err())
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
