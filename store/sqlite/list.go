package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

var (
	_ driver.Lister = (*DB)(nil)
	_ driver.Tokens = (*DB)(nil)
)

// Listing. ?1 tenant, ?2 cursor (t_hlc, or created_at ms; NULL: start),
// ?3 cursor job id, ?4 statuses (a JSON array, NULL for all), ?5 kind (empty
// for all), ?6 filter by partition (0/1), ?7 partition, ?8 with payload,
// ?9 limit (the statements are templates of the two orders: see listHLC), ?10 and ?11 the payload search's window floor (t_hlc or created_at
// ms, then job id: search.go), ?12 the search text ("" for none; instr:
// case-sensitive and literal, as strpos on PostgreSQL, where LIKE would
// fold ASCII case here and not there, and % and _ would need escaping).
// Both page over an index whose first columns are (tenant_id, order
// column): idx_job_state_tenant_hlc, idx_jobs_tenant_created, named with
// INDEXED BY and, on the HLC side, a CROSS JOIN that keeps job_state the
// outer loop. Without them, statistics from an ANALYZE (of a database
// with few tenants) lead SQLite to scan the whole log and sort it for
// every page, and a payload search would no longer be bounded by its
// window.
const (
	listHLCSQL = `
		SELECT s.job_id, s.partition_key, s.t_hlc, s.kind, s.status, s.attempts, s.max_attempts, s.run_at, s.updated_at,
		       s.lease_owner, s.lease_expires_at, s.last_error,
		       l.seq_bigint, l.chain_pos, l.payload_hash, l.prev_link, l.link, l.priority, l.created_at,
		       CASE WHEN ?8 THEN l.payload END,
		       EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id)
		FROM job_state s INDEXED BY idx_job_state_tenant_hlc
		CROSS JOIN scheduler_log l
		  ON l.tenant_id = s.tenant_id AND l.t_hlc = s.t_hlc AND l.partition_key = s.partition_key AND l.job_id = s.job_id
		WHERE s.tenant_id = ?1
		  AND (?2 IS NULL OR (s.t_hlc %[1]s= ?2 AND (s.t_hlc %[1]s ?2 OR s.job_id %[1]s ?3)))
		  AND (?4 IS NULL OR s.status IN (SELECT value FROM json_each(?4)))
		  AND (?5 = '' OR s.kind = ?5)
		  AND (NOT ?6 OR s.partition_key = ?7)
		  AND s.t_hlc >= ?10 AND (s.t_hlc > ?10 OR s.job_id >= ?11)
		  AND (?12 = '' OR instr(l.payload, ?12) > 0)
		ORDER BY s.t_hlc%[2]s, s.job_id%[2]s
		LIMIT ?9`

	listLegacySQL = `
		SELECT j.id, COALESCE(j.project_id, ''), j.kind, j.status, j.attempts, j.max_attempts, j.run_at, j.updated_at,
		       j.lease_owner, j.lease_expires_at, j.last_error, j.payload_digest, j.priority, j.created_at,
		       CASE WHEN ?8 THEN j.payload END
		FROM jobs j INDEXED BY idx_jobs_tenant_created
		WHERE j.tenant_id = ?1
		  AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)
		  AND (?2 IS NULL OR (j.created_at %[1]s= ?2 AND (j.created_at %[1]s ?2 OR j.id %[1]s ?3)))
		  AND (?4 IS NULL OR j.status IN (SELECT value FROM json_each(?4)))
		  AND (?5 = '' OR j.kind = ?5)
		  AND (NOT ?6 OR COALESCE(j.project_id, '') = ?7)
		  AND j.created_at >= ?10 AND (j.created_at > ?10 OR j.id >= ?11)
		  AND (?12 = '' OR instr(j.payload, ?12) > 0)
		ORDER BY j.created_at%[2]s, j.id%[2]s
		LIMIT ?9`
)

// The statements in each order (an index serves either direction).
var (
	listHLC    = driver.OrderedList(listHLCSQL)
	listLegacy = driver.OrderedList(listLegacySQL)
)

// statusList encodes a status filter for json_each(?): NULL for all.
func statusList(statuses []driver.Status) any {
	if len(statuses) == 0 {
		return nil
	}
	b, _ := json.Marshal(statuses) // []Status (strings) always marshals
	return string(b)
}

// ListJobs implements driver.Lister. Both sections of a page are read in
// one transaction.
func (db *DB) ListJobs(ctx context.Context, p driver.ListParams) ([]driver.JobInfo, string, error) {
	if err := p.Validate(); err != nil {
		return nil, "", err
	}
	cur := p.StartCursor()
	partition := ""
	if p.Partition != nil {
		partition = *p.Partition
	}
	filter := func(after any) []any {
		return []any{p.TenantID, after, cur.JobID.String(), statusList(p.Statuses), p.Kind, p.Partition != nil, partition, p.WithPayload}
	}
	var out []driver.JobInfo
	var next string
	err := db.inTx(ctx, "listing jobs", func(t *txn) error {
		out, next = nil, ""
		if !cur.Legacy {
			var after any
			if !cur.Start {
				after = cur.THLC
			}
			floor, floorID, err := t.hlcFloor(p)
			if err != nil {
				return err
			}
			rows, err := t.query(listHLC.For(p), append(filter(after), p.Limit, floor, floorID, p.PayloadContains)...)
			if err != nil {
				return err
			}
			for rows.Next() {
				info := driver.JobInfo{TenantID: p.TenantID, InHLC: true}
				e := &driver.ChainEntry{}
				var status string
				var runAt, updatedAt, createdAt int64
				var lc leaseCols
				var hash, prev, link []byte
				var payload sql.NullString
				if err := rows.Scan(&info.JobID, &info.PartitionKey, &e.THLC, &info.Kind, &status, &info.Attempts, &info.MaxAttempts,
					&runAt, &updatedAt, &lc.owner, &lc.expires, &lc.lastErr,
					&e.Seq, &e.Pos, &hash, &prev, &link, &info.Priority, &createdAt, &payload, &info.InLegacy); err != nil {
					rows.Close()
					return err
				}
				if err := lc.apply(&info); err != nil {
					rows.Close()
					return err
				}
				info.Status = driver.Status(status)
				info.RunAt, info.UpdatedAt, info.CreatedAt = fromMS(runAt), fromMS(updatedAt), fromMS(createdAt)
				e.PayloadHash, _ = chain.HashFromBytes(hash)
				e.Link, _ = chain.HashFromBytes(link)
				e.PrevLinkNull = prev == nil
				if prev != nil {
					e.PrevLink, _ = chain.HashFromBytes(prev)
				}
				info.PayloadHash = e.PayloadHash
				if payload.Valid {
					info.Payload = []byte(payload.String)
					e.Payload = info.Payload
				}
				info.Chain = e
				out = append(out, info)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(out) == p.Limit {
				next = driver.CursorAfter(out[len(out)-1]).String()
				return nil
			}
			cur = driver.Cursor{Legacy: true, Start: true}
		}

		var after any
		if !cur.Start {
			after = cur.CreatedAt.UnixMilli()
		}
		floor, floorID, err := t.legacyFloor(p)
		if err != nil {
			return err
		}
		rows, err := t.query(listLegacy.For(p), append(filter(after), p.Limit-len(out), floor, floorID, p.PayloadContains)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			info := driver.JobInfo{TenantID: p.TenantID, InLegacy: true}
			var status, digest string
			var runAt, updatedAt, createdAt int64
			var lc leaseCols
			var payload sql.NullString
			if err := rows.Scan(&info.JobID, &info.PartitionKey, &info.Kind, &status, &info.Attempts, &info.MaxAttempts,
				&runAt, &updatedAt, &lc.owner, &lc.expires, &lc.lastErr, &digest, &info.Priority, &createdAt, &payload); err != nil {
				return err
			}
			if err := lc.apply(&info); err != nil {
				return err
			}
			info.Status = driver.Status(status)
			info.RunAt, info.UpdatedAt, info.CreatedAt = fromMS(runAt), fromMS(updatedAt), fromMS(createdAt)
			info.PayloadHash, _ = chain.ParseHash(digest)
			if payload.Valid {
				info.Payload = []byte(payload.String)
			}
			out = append(out, info)
			n++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out) == p.Limit && n > 0 {
			next = driver.CursorAfter(out[len(out)-1]).String()
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// countSQL counts each job once: HLC state where it exists, else the
// legacy row. ?1 tenant (empty for all), ?2 statuses (JSON, NULL for all).
const countSQL = `
	SELECT tenant_id, status, count(*) FROM (
	    SELECT tenant_id, status FROM job_state
	    WHERE (?1 = '' OR tenant_id = ?1) AND (?2 IS NULL OR status IN (SELECT value FROM json_each(?2)))
	  UNION ALL
	    SELECT tenant_id, status FROM jobs j
	    WHERE (?1 = '' OR tenant_id = ?1) AND (?2 IS NULL OR status IN (SELECT value FROM json_each(?2)))
	      AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)
	)
	GROUP BY tenant_id, status
	ORDER BY tenant_id, status`

// CountByStatus implements driver.Lister.
func (db *DB) CountByStatus(ctx context.Context, p driver.CountParams) ([]driver.StatusCount, error) {
	var out []driver.StatusCount
	err := db.inTx(ctx, "counting jobs", func(t *txn) error {
		out = nil
		rows, err := t.query(countSQL, p.TenantID, statusList(p.Statuses))
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.StatusCount, error) {
			var c driver.StatusCount
			var status string
			if err := r.Scan(&c.TenantID, &status, &c.Count); err != nil {
				return c, err
			}
			c.Status = driver.Status(status)
			return c, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateToken implements driver.Tokens.
func (db *DB) CreateToken(ctx context.Context, tok driver.APIToken) error {
	return db.inTx(ctx, "creating API token "+tok.ID, func(t *txn) error {
		var tenant any
		if !tok.Admin {
			tenant = tok.TenantID
		}
		var expires any
		if !tok.ExpiresAt.IsZero() {
			expires = ms(tok.ExpiresAt)
		}
		_, err := t.exec(`INSERT INTO api_tokens (token_id, token_hash, tenant_id, is_admin, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`,
			tok.ID, tok.Hash[:], tenant, tok.Admin, tok.Name, ms(tok.CreatedAt), expires)
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("a token with this id or hash exists")
		}
		return err
	})
}

const tokenSelect = `SELECT token_id, token_hash, tenant_id, is_admin, name, created_at, revoked_at, expires_at FROM api_tokens`

type scanner interface{ Scan(dest ...any) error }

func scanToken(row scanner) (driver.APIToken, error) {
	var tok driver.APIToken
	var hash []byte
	var tenant sql.NullString
	var created int64
	var revoked, expires sql.NullInt64
	if err := row.Scan(&tok.ID, &hash, &tenant, &tok.Admin, &tok.Name, &created, &revoked, &expires); err != nil {
		return tok, err
	}
	if expires.Valid {
		tok.ExpiresAt = fromMS(expires.Int64)
	}
	copy(tok.Hash[:], hash)
	tok.TenantID = tenant.String
	tok.CreatedAt = fromMS(created)
	if revoked.Valid {
		tok.RevokedAt = fromMS(revoked.Int64)
	}
	return tok, nil
}

// TokenByHash implements driver.Tokens.
func (db *DB) TokenByHash(ctx context.Context, h [32]byte) (driver.APIToken, error) {
	var tok driver.APIToken
	err := db.inTx(ctx, "looking up an API token", func(t *txn) error {
		var err error
		tok, err = scanToken(t.queryRow(tokenSelect+` WHERE token_hash = ?1`, h[:]))
		if errors.Is(err, sql.ErrNoRows) {
			return driver.ErrTokenNotFound
		}
		return err
	})
	if errors.Is(err, driver.ErrTokenNotFound) {
		return driver.APIToken{}, driver.ErrTokenNotFound
	}
	return tok, err
}

// ListTokens implements driver.Tokens.
func (db *DB) ListTokens(ctx context.Context) ([]driver.APIToken, error) {
	var out []driver.APIToken
	err := db.inTx(ctx, "listing API tokens", func(t *txn) error {
		out = nil
		rows, err := t.query(tokenSelect + ` ORDER BY created_at, token_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			tok, err := scanToken(rows)
			if err != nil {
				return err
			}
			out = append(out, tok)
		}
		return rows.Err()
	})
	return out, err
}

// RevokeToken implements driver.Tokens.
func (db *DB) RevokeToken(ctx context.Context, id string, now time.Time) error {
	err := db.inTx(ctx, "revoking API token "+id, func(t *txn) error {
		n, err := t.affected(`UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE token_id = ?1`, id, ms(now))
		if err != nil {
			return err
		}
		if n == 0 {
			return driver.ErrTokenNotFound
		}
		_, err = t.exec(`DELETE FROM dashboard_sessions WHERE token_hash = (SELECT token_hash FROM api_tokens WHERE token_id = ?1)`, id)
		return err
	})
	if errors.Is(err, driver.ErrTokenNotFound) {
		return driver.ErrTokenNotFound
	}
	return err
}
