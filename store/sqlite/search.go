package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"

	"github.com/ordo-sched/ordo/driver"
)

// The payload search of ListJobs reads only the tenant's newest
// p.SearchWindow jobs on each side (driver.MaxSearchWindow), as on
// PostgreSQL. The window's oldest job, its floor, is found by walking the
// (tenant_id, order column) index backwards, and the listing then starts
// its index range there: statements are prepared once, without their
// parameters' values, so the floor is a plain range condition ("t_hlc >=
// ?10") that the planner can use, never "?10 IS NULL OR ...". INDEXED BY
// keeps these walks whatever statistics an ANALYZE left.
const (
	searchFloorHLCSQL = `
		SELECT t_hlc, job_id FROM job_state INDEXED BY idx_job_state_tenant_hlc WHERE tenant_id = ?1
		ORDER BY t_hlc DESC, job_id DESC LIMIT 1 OFFSET ?2`
	searchFloorLegacySQL = `
		SELECT created_at, id FROM jobs INDEXED BY idx_jobs_tenant_created WHERE tenant_id = ?1
		ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?2`
)

// hlcFloor is the HLC side's window floor for p: every job at or after
// (t_hlc, job id) is in the window. Without a search, or when the tenant
// has no more jobs than the window, it is ("", ""): everything.
func (t *txn) hlcFloor(p driver.ListParams) (string, string, error) {
	var thlc, id string
	if p.PayloadContains == "" {
		return "", "", nil
	}
	err := t.queryRow(searchFloorHLCSQL, p.TenantID, p.SearchWindow-1).Scan(&thlc, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return thlc, id, err
}

// legacyFloor is hlcFloor for the legacy table, by (created_at ms, id);
// math.MinInt64 when everything is in the window.
func (t *txn) legacyFloor(p driver.ListParams) (int64, string, error) {
	var at int64
	var id string
	if p.PayloadContains == "" {
		return math.MinInt64, "", nil
	}
	err := t.queryRow(searchFloorLegacySQL, p.TenantID, p.SearchWindow-1).Scan(&at, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return math.MinInt64, "", nil
	}
	return at, id, err
}

// recentKindsSQL: the kinds of the tenant's newest ?2 jobs on each side,
// each side an index walk of at most ?2 rows, in byte order (BINARY). ?3
// limit.
const recentKindsSQL = `
	SELECT kind FROM (SELECT kind FROM job_state INDEXED BY idx_job_state_tenant_hlc WHERE tenant_id = ?1 ORDER BY t_hlc DESC, job_id DESC LIMIT ?2)
	UNION
	SELECT kind FROM (SELECT kind FROM jobs INDEXED BY idx_jobs_tenant_created WHERE tenant_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2)
	ORDER BY kind
	LIMIT ?3`

// RecentKinds implements driver.KindLister.
func (db *DB) RecentKinds(ctx context.Context, p driver.KindParams) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var out []string
	err := db.inTx(ctx, "listing kinds", func(t *txn) error {
		rows, err := t.query(recentKindsSQL, p.TenantID, p.Window, p.Limit)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (string, error) {
			var k string
			err := r.Scan(&k)
			return k, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
