package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
)

// The payload search of ListJobs reads only the tenant's newest
// p.SearchWindow jobs on each side (driver.MaxSearchWindow). The window's
// oldest job, its floor, is found by walking the (tenant_id, order column)
// index backwards, and the listing then starts its index range there:
// "t_hlc >= floor" is a plain range condition (no "param IS NULL OR"), so
// the range bounds the scan in every plan, generic ones included.
const (
	searchFloorHLCSQL = `
SELECT t_hlc, job_id FROM scheduler.job_state WHERE tenant_id = $1
ORDER BY t_hlc DESC, job_id DESC LIMIT 1 OFFSET $2`
	searchFloorLegacySQL = `
SELECT created_at, id FROM scheduler.jobs WHERE tenant_id = $1
ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET $2`
)

// hlcFloor is the HLC side's window floor for p: every job at or after
// (t_hlc, job id) is in the window. Without a search, or when the tenant
// has no more jobs than the window, it is ("", nil UUID): everything.
func (db *DB) hlcFloor(ctx context.Context, p driver.ListParams) (string, uuid.UUID, error) {
	var thlc string
	var id uuid.UUID
	if p.PayloadContains == "" {
		return thlc, id, nil
	}
	err := db.Pool.QueryRow(ctx, searchFloorHLCSQL, p.TenantID, p.SearchWindow-1).Scan(&thlc, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", uuid.Nil, nil
	}
	return thlc, id, wrap("finding the search window", err)
}

// legacyFloor is hlcFloor for the legacy table, by (created_at, id); the
// zero time when everything is in the window.
func (db *DB) legacyFloor(ctx context.Context, p driver.ListParams) (time.Time, uuid.UUID, error) {
	var at time.Time
	var id uuid.UUID
	if p.PayloadContains == "" {
		return at, id, nil
	}
	err := db.Pool.QueryRow(ctx, searchFloorLegacySQL, p.TenantID, p.SearchWindow-1).Scan(&at, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, uuid.Nil, nil
	}
	return at, id, wrap("finding the search window", err)
}

// recentKindsSQL: the kinds of the tenant's newest $2 jobs on each side,
// each side an index walk of at most $2 rows; byte order (COLLATE "C"),
// as SQLite sorts. $3 limit.
const recentKindsSQL = `
SELECT kind FROM (
    (SELECT kind FROM scheduler.job_state WHERE tenant_id = $1 ORDER BY t_hlc DESC, job_id DESC LIMIT $2)
  UNION
    (SELECT kind FROM scheduler.jobs WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
) AS k
ORDER BY kind COLLATE "C"
LIMIT $3`

// RecentKinds implements driver.KindLister.
func (db *DB) RecentKinds(ctx context.Context, p driver.KindParams) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rows, err := db.Pool.Query(ctx, recentKindsSQL, p.TenantID, p.Window, p.Limit)
	if err != nil {
		return nil, wrap("listing kinds", err)
	}
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return kinds, wrap("listing kinds", err)
}
