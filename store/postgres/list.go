package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

var (
	_ driver.Lister = (*DB)(nil)
	_ driver.Tokens = (*DB)(nil)
)

// listHLCSQL pages a tenant's HLC-side jobs in (t_hlc, job_id) order over
// idx_job_state_tenant_hlc. $1 tenant, $2 cursor t_hlc (NULL: start), $3
// cursor job id, $4 statuses (empty: all), $5 kind (empty: all), $6 filter by
// partition, $7 partition, $8 with payload, $9 limit, $10 and $11 the payload
// search's window floor (t_hlc, job id; "" for none: search.go), $12 the
// search text ("" for none; strpos: case-sensitive and literal, so % and _
// need no escaping).
const listHLCSQL = `
SELECT s.job_id, s.partition_key, s.t_hlc, s.kind, s.status, s.attempts, s.max_attempts, s.run_at, s.updated_at,
       s.lease_owner, s.lease_expires_at, s.last_error,
       l.seq_bigint, l.chain_pos, l.payload_hash, l.prev_link, l.link, l.priority, l.created_at,
       CASE WHEN $8 THEN l.payload END,
       EXISTS (SELECT 1 FROM scheduler.jobs j WHERE j.id = s.job_id AND j.tenant_id = $1)
FROM scheduler.job_state s
JOIN scheduler.scheduler_log l
  ON l.tenant_id = s.tenant_id AND l.t_hlc = s.t_hlc AND l.partition_key = s.partition_key AND l.job_id = s.job_id
WHERE s.tenant_id = $1
  AND ($2::text IS NULL OR (s.t_hlc %[1]s= $2 AND (s.t_hlc %[1]s $2 OR s.job_id %[1]s $3)))
  AND (cardinality($4::text[]) = 0 OR s.status = ANY($4))
  AND ($5 = '' OR s.kind = $5)
  AND (NOT $6 OR s.partition_key = $7)
  AND s.t_hlc >= $10 AND (s.t_hlc > $10 OR s.job_id >= $11)
  AND ($12 = '' OR strpos(l.payload, $12) > 0)
ORDER BY s.t_hlc%[2]s, s.job_id%[2]s
LIMIT $9`

// listLegacySQL pages a tenant's legacy-only jobs in (created_at, id)
// order over idx_jobs_tenant_created; parameters as listHLCSQL, $2 and $10
// timestamptz. The search reads jsonb's text form of the payload.
const listLegacySQL = `
SELECT j.id, COALESCE(j.project_id, ''), j.kind, j.status, j.attempts, j.max_attempts, j.run_at, j.updated_at,
       j.lease_owner, j.lease_expires_at, j.last_error, j.payload_digest, j.priority, j.created_at,
       CASE WHEN $8 THEN j.payload::text END
FROM scheduler.jobs j
WHERE j.tenant_id = $1
  AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id AND s.tenant_id = $1)
  AND ($2::timestamptz IS NULL OR (j.created_at %[1]s= $2 AND (j.created_at %[1]s $2 OR j.id %[1]s $3)))
  AND (cardinality($4::text[]) = 0 OR j.status = ANY($4))
  AND ($5 = '' OR j.kind = $5)
  AND (NOT $6 OR COALESCE(j.project_id, '') = $7)
  AND j.created_at >= $10 AND (j.created_at > $10 OR j.id >= $11)
  AND ($12 = '' OR strpos(j.payload::text, $12) > 0)
ORDER BY j.created_at%[2]s, j.id%[2]s
LIMIT $9`

// The statements in each order (an index serves either direction).
var (
	listHLC    = driver.OrderedList(listHLCSQL)
	listLegacy = driver.OrderedList(listLegacySQL)
)

// ListJobs implements driver.Lister.
func (db *DB) ListJobs(ctx context.Context, p driver.ListParams) ([]driver.JobInfo, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", err
	}
	cur := p.StartCursor()
	statuses := make([]string, len(p.Statuses))
	for i, s := range p.Statuses {
		statuses[i] = string(s)
	}
	partition := ""
	if p.Partition != nil {
		partition = *p.Partition
	}
	var out []driver.JobInfo
	if !cur.Legacy {
		var after *string
		if !cur.Start {
			after = &cur.THLC
		}
		floor, floorID, err := db.hlcFloor(ctx, p)
		if err != nil {
			return nil, "", err
		}
		rows, err := db.Pool.Query(ctx, listHLC.For(p), p.TenantID, after, cur.JobID, statuses, p.Kind, p.Partition != nil, partition, p.WithPayload, p.Limit,
			floor, floorID, p.PayloadContains)
		if err != nil {
			return nil, "", wrap("listing jobs", err)
		}
		for rows.Next() {
			info := driver.JobInfo{TenantID: p.TenantID, InHLC: true}
			e := &driver.ChainEntry{}
			var owner, lastErr, payload *string
			var expires *time.Time
			var hash, prev, link []byte
			if err := rows.Scan(&info.JobID, &info.PartitionKey, &e.THLC, &info.Kind, &info.Status, &info.Attempts, &info.MaxAttempts,
				&info.RunAt, &info.UpdatedAt, &owner, &expires, &lastErr,
				&e.Seq, &e.Pos, &hash, &prev, &link, &info.Priority, &info.CreatedAt, &payload, &info.InLegacy); err != nil {
				rows.Close()
				return nil, "", wrap("listing jobs", err)
			}
			setLease(&info, owner, nil, expires, lastErr)
			e.PayloadHash, _ = chain.HashFromBytes(hash)
			e.Link, _ = chain.HashFromBytes(link)
			e.PrevLinkNull = prev == nil
			if prev != nil {
				e.PrevLink, _ = chain.HashFromBytes(prev)
			}
			info.PayloadHash = e.PayloadHash
			if payload != nil {
				info.Payload = []byte(*payload)
				e.Payload = info.Payload
			}
			info.Chain = e
			out = append(out, info)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, "", wrap("listing jobs", err)
		}
		if len(out) == p.Limit {
			return out, driver.CursorAfter(out[len(out)-1]).String(), nil
		}
		cur = driver.Cursor{Legacy: true, Start: true}
	}

	var after *time.Time
	if !cur.Start {
		after = &cur.CreatedAt
	}
	floor, floorID, err := db.legacyFloor(ctx, p)
	if err != nil {
		return nil, "", err
	}
	rows, err := db.Pool.Query(ctx, listLegacy.For(p), p.TenantID, after, cur.JobID, statuses, p.Kind, p.Partition != nil, partition,
		p.WithPayload, p.Limit-len(out), floor, floorID, p.PayloadContains)
	if err != nil {
		return nil, "", wrap("listing jobs", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		info := driver.JobInfo{TenantID: p.TenantID, InLegacy: true}
		var owner, lastErr, payload *string
		var expires *time.Time
		var digest string
		if err := rows.Scan(&info.JobID, &info.PartitionKey, &info.Kind, &info.Status, &info.Attempts, &info.MaxAttempts,
			&info.RunAt, &info.UpdatedAt, &owner, &expires, &lastErr, &digest, &info.Priority, &info.CreatedAt, &payload); err != nil {
			return nil, "", wrap("listing jobs", err)
		}
		setLease(&info, owner, nil, expires, lastErr)
		info.PayloadHash, _ = chain.ParseHash(digest)
		if payload != nil {
			info.Payload = []byte(*payload)
		}
		out = append(out, info)
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap("listing jobs", err)
	}
	if len(out) == p.Limit && n > 0 {
		return out, driver.CursorAfter(out[len(out)-1]).String(), nil
	}
	return out, "", nil
}

// countSQL counts each job once: HLC state where it exists, else the
// legacy row. $1 tenant (empty: all), $2 statuses (empty: all).
const countSQL = `
SELECT tenant_id, status, count(*) FROM (
    SELECT tenant_id, status FROM scheduler.job_state
    WHERE ($1 = '' OR tenant_id = $1) AND (cardinality($2::text[]) = 0 OR status = ANY($2))
  UNION ALL
    SELECT tenant_id, status FROM scheduler.jobs j
    WHERE ($1 = '' OR tenant_id = $1) AND (cardinality($2::text[]) = 0 OR status = ANY($2))
      AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id)
) AS x
GROUP BY tenant_id, status
ORDER BY tenant_id, status`

// CountByStatus implements driver.Lister.
func (db *DB) CountByStatus(ctx context.Context, p driver.CountParams) ([]driver.StatusCount, error) {
	statuses := make([]string, len(p.Statuses))
	for i, s := range p.Statuses {
		statuses[i] = string(s)
	}
	rows, err := db.Pool.Query(ctx, countSQL, p.TenantID, statuses)
	if err != nil {
		return nil, wrap("counting jobs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.StatusCount, error) {
		var c driver.StatusCount
		err := r.Scan(&c.TenantID, &c.Status, &c.Count)
		return c, err
	})
	return out, wrap("counting jobs", err)
}

// CreateToken implements driver.Tokens.
func (db *DB) CreateToken(ctx context.Context, t driver.APIToken) error {
	var tenant *string
	if !t.Admin {
		tenant = &t.TenantID
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.api_tokens (token_id, token_hash, tenant_id, is_admin, name, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, t.Hash[:], tenant, t.Admin, t.Name, t.CreatedAt, nullable(t.ExpiresAt))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("postgres: creating API token %s: a token with this id or hash exists", t.ID)
	}
	return wrap("creating API token "+t.ID, err)
}

const tokenCols = `token_id, token_hash, tenant_id, is_admin, name, created_at, revoked_at, expires_at`

func scanToken(row pgx.Row) (driver.APIToken, error) {
	var t driver.APIToken
	var hash []byte
	var tenant *string
	var revoked, expires *time.Time
	if err := row.Scan(&t.ID, &hash, &tenant, &t.Admin, &t.Name, &t.CreatedAt, &revoked, &expires); err != nil {
		return t, err
	}
	if expires != nil {
		t.ExpiresAt = *expires
	}
	copy(t.Hash[:], hash)
	if tenant != nil {
		t.TenantID = *tenant
	}
	if revoked != nil {
		t.RevokedAt = *revoked
	}
	return t, nil
}

// TokenByHash implements driver.Tokens.
func (db *DB) TokenByHash(ctx context.Context, h [32]byte) (driver.APIToken, error) {
	t, err := scanToken(db.Pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM scheduler.api_tokens WHERE token_hash = $1`, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return driver.APIToken{}, driver.ErrTokenNotFound
	}
	if err != nil {
		return driver.APIToken{}, wrap("looking up an API token", err)
	}
	return t, nil
}

// ListTokens implements driver.Tokens.
func (db *DB) ListTokens(ctx context.Context) ([]driver.APIToken, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+tokenCols+` FROM scheduler.api_tokens ORDER BY created_at, token_id`)
	if err != nil {
		return nil, wrap("listing API tokens", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.APIToken, error) { return scanToken(r) })
	return out, wrap("listing API tokens", err)
}

// RevokeToken implements driver.Tokens.
func (db *DB) RevokeToken(ctx context.Context, id string, now time.Time) error {
	var n int64
	err := db.inTx(ctx, "revoking API token "+id, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE scheduler.api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_id = $1`, id, now)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `DELETE FROM scheduler.dashboard_sessions
			WHERE token_hash = (SELECT token_hash FROM scheduler.api_tokens WHERE token_id = $1)`, id)
		return err
	})
	if err == nil && n == 0 {
		return driver.ErrTokenNotFound
	}
	return err
}
