package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
)

// firstStartSet is the part of a lease's SET that records the job's first
// start (migration 012): the lease's time ($1 of the dequeue) and how long
// the job had been due, from its run_at as it stands before this lease.
// COALESCE keeps both through later leases of the same job.
func firstStartSet(alias string) string {
	return `started_at = COALESCE(` + alias + `.started_at, $1),
	    start_wait_ms = COALESCE(` + alias + `.start_wait_ms, GREATEST(0, (EXTRACT(EPOCH FROM ($1 - ` + alias + `.run_at)) * 1000)::bigint))`
}

// minuteOf is the minute number (Unix minutes) of a timestamptz
// expression; EXTRACT gives an exact numeric, so floor is exact too.
func minuteOf(expr string) string { return `floor(EXTRACT(EPOCH FROM ` + expr + `) / 60)::bigint` }

// liveActivitySQL computes the activity of each tenant of $1 in each
// minute of [$2, $3) from the job tables ($4 and $5 are the bounds as
// t_hlc lower bounds): one index range per part. Enqueues are log entries
// by t_hlc, plus legacy rows without one; first starts come from
// job_state, and from a legacy row only when the job has no HLC state
// that recorded a start; final states from each job's one current row.
var liveActivitySQL = `
SELECT tenant_id, m, sum(enq)::bigint, sum(st)::bigint, sum(ok)::bigint, sum(bad)::bigint, sum(wsum)::bigint, max(wmax)::bigint FROM (
	SELECT tenant_id, substr(t_hlc, 1, 13)::bigint / 60000 AS m, count(*) AS enq, 0::bigint AS st, 0::bigint AS ok, 0::bigint AS bad,
	       0::numeric AS wsum, 0::bigint AS wmax
	FROM scheduler.scheduler_log WHERE tenant_id = ANY($1) AND t_hlc >= $4 AND t_hlc < $5 GROUP BY 1, 2
  UNION ALL
	SELECT tenant_id, ` + minuteOf("created_at") + `, count(*), 0, 0, 0, 0, 0
	FROM scheduler.jobs j WHERE tenant_id = ANY($1) AND created_at >= $2 AND created_at < $3
	  AND NOT EXISTS (SELECT 1 FROM scheduler.scheduler_log l WHERE l.job_id = j.id) GROUP BY 1, 2
  UNION ALL
	SELECT tenant_id, ` + minuteOf("started_at") + `, 0, count(*), 0, 0, sum(start_wait_ms), max(start_wait_ms)
	FROM scheduler.job_state WHERE started_at >= $2 AND started_at < $3 AND tenant_id = ANY($1) GROUP BY 1, 2
  UNION ALL
	SELECT tenant_id, ` + minuteOf("started_at") + `, 0, count(*), 0, 0, sum(start_wait_ms), max(start_wait_ms)
	FROM scheduler.jobs j WHERE started_at >= $2 AND started_at < $3 AND tenant_id = ANY($1)
	  AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id AND s.started_at IS NOT NULL) GROUP BY 1, 2
  UNION ALL
	SELECT tenant_id, ` + minuteOf("updated_at") + `, 0, 0, count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'), 0, 0
	FROM scheduler.job_state WHERE status IN ('succeeded', 'failed') AND updated_at >= $2 AND updated_at < $3 AND tenant_id = ANY($1)
	GROUP BY 1, 2
  UNION ALL
	SELECT tenant_id, ` + minuteOf("updated_at") + `, 0, 0, count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'), 0, 0
	FROM scheduler.jobs j WHERE status IN ('succeeded', 'failed') AND updated_at >= $2 AND updated_at < $3 AND tenant_id = ANY($1)
	  AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id) GROUP BY 1, 2
) x GROUP BY tenant_id, m`

// rollupSQL records liveActivitySQL's rows. A minute is recorded once
// (the watermark moves past it in the same transaction); DO UPDATE only
// makes a repeated window harmless.
var rollupSQL = `
INSERT INTO scheduler.activity_minutes AS a (tenant_id, minute, enqueued, started, succeeded, failed, wait_sum_ms, wait_max_ms)
SELECT tenant_id, to_timestamp(m * 60), enq, st, ok, bad, wsum, wmax
FROM (` + liveActivitySQL + `) AS live (tenant_id, m, enq, st, ok, bad, wsum, wmax)
WHERE enq + st + ok + bad > 0
ON CONFLICT (tenant_id, minute) DO UPDATE SET enqueued = EXCLUDED.enqueued, started = EXCLUDED.started,
	succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed, wait_sum_ms = EXCLUDED.wait_sum_ms, wait_max_ms = EXCLUDED.wait_max_ms`

// rolledSQL reads recorded minutes: $1 tenant (empty: every tenant, summed),
// [$2, $3).
const rolledSQL = `
SELECT minute, sum(enqueued)::bigint, sum(started)::bigint, sum(succeeded)::bigint, sum(failed)::bigint,
       sum(wait_sum_ms)::bigint, max(wait_max_ms)
FROM scheduler.activity_minutes WHERE ($1 = '' OR tenant_id = $1) AND minute >= $2 AND minute < $3
GROUP BY minute`

// rowQuerier is what both a pool and a transaction offer.
type rowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func tenantsOf(ctx context.Context, q rowQuerier, tenant string) ([]string, error) {
	if tenant != "" {
		return []string{tenant}, nil
	}
	rows, err := q.Query(ctx, activityTenants)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// rolledUntil reads the rollup's watermark (zero before the first rollup).
func rolledUntil(ctx context.Context, q rowQuerier, lock bool) (time.Time, error) {
	sql := `SELECT rolled_until FROM scheduler.activity_rollup WHERE id = 1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var at time.Time
	err := q.QueryRow(ctx, sql).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return at.UTC(), err
}

func liveActivity(ctx context.Context, q rowQuerier, tenants []string, from, to time.Time) ([]driver.TenantMinute, error) {
	rows, err := q.Query(ctx, liveActivitySQL, tenants, from, to,
		driver.THLCLowerBound(from.UnixMilli()), driver.THLCLowerBound(to.UnixMilli()))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.TenantMinute, error) {
		var m driver.TenantMinute
		var minute int64
		err := r.Scan(&m.TenantID, &minute, &m.Enqueued, &m.Started, &m.Succeeded, &m.Failed, &m.WaitSumMS, &m.WaitMaxMS)
		m.Minute = time.Unix(minute*60, 0).UTC()
		return m, err
	})
}

// ActivityMinutes implements driver.Insights. It reads in one snapshot,
// so a rollup committing meanwhile is seen entirely or not at all.
func (db *DB) ActivityMinutes(ctx context.Context, p driver.ActivityParams) ([]driver.ActivityMinute, error) {
	from, to := driver.MinuteOf(p.From), driver.MinuteOf(p.To)
	if !to.After(from) {
		return nil, nil
	}
	var out []driver.ActivityMinute
	err := pgx.BeginTxFunc(ctx, db.Pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		until, err := rolledUntil(ctx, tx, false)
		if err != nil {
			return err
		}
		var rolled, live []driver.ActivityMinute
		if end := minTime(to, until); end.After(from) {
			rows, err := tx.Query(ctx, rolledSQL, p.TenantID, from, end)
			if err != nil {
				return err
			}
			if rolled, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.ActivityMinute, error) {
				var m driver.ActivityMinute
				err := r.Scan(&m.Minute, &m.Enqueued, &m.Started, &m.Succeeded, &m.Failed, &m.WaitSumMS, &m.WaitMaxMS)
				m.Minute = m.Minute.UTC()
				return m, err
			}); err != nil {
				return err
			}
		}
		if start := maxTime(from, until); to.After(start) {
			tenants, err := tenantsOf(ctx, tx, p.TenantID)
			if err != nil {
				return err
			}
			rows, err := liveActivity(ctx, tx, tenants, start, to)
			if err != nil {
				return err
			}
			for _, r := range rows {
				live = append(live, r.ActivityMinute)
			}
		}
		out = driver.MergeActivity(rolled, live)
		return nil
	})
	return out, wrap("reading activity", err)
}

// RollupActivity implements driver.Insights. The watermark row's lock
// serialises concurrent rollups (two leaders in a handover): the second
// finds the window done.
func (db *DB) RollupActivity(ctx context.Context, p driver.RollupParams) (driver.RollupResult, error) {
	p = p.WithDefaults()
	var res driver.RollupResult
	err := db.inTx(ctx, "rolling up activity", func(tx pgx.Tx) error {
		res = driver.RollupResult{}
		if _, err := tx.Exec(ctx, `INSERT INTO scheduler.activity_rollup (id, rolled_until, updated_at) VALUES (1, $1, $2)
			ON CONFLICT (id) DO NOTHING`, p.Start(), p.Now); err != nil {
			return err
		}
		until, err := rolledUntil(ctx, tx, true)
		if err != nil {
			return err
		}
		from, to := p.Window(until)
		res.From, res.Until = from, to
		if !to.After(from) {
			res.Until = until
			return nil
		}
		tenants, err := tenantsOf(ctx, tx, "")
		if err != nil {
			return err
		}
		if len(tenants) > 0 {
			tag, err := tx.Exec(ctx, rollupSQL, tenants, from, to,
				driver.THLCLowerBound(from.UnixMilli()), driver.THLCLowerBound(to.UnixMilli()))
			if err != nil {
				return err
			}
			res.Rows = int(tag.RowsAffected())
		}
		if _, err := tx.Exec(ctx, `UPDATE scheduler.activity_rollup SET rolled_until = $1, updated_at = $2 WHERE id = 1`, to, p.Now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM scheduler.activity_minutes WHERE minute < $1`, p.Now.Add(-p.Keep))
		return err
	})
	return res, err
}

// kindCountsSQL counts a tenant's jobs by kind and status: $1 tenant, $2
// the start of the finished jobs' window. Each part is a range of an
// index: the dequeue index for pending and scheduled, the lease index for
// running, the finished index for the rest.
const kindCountsSQL = `
SELECT kind, status, count(*) FROM (
	SELECT kind, status FROM scheduler.job_state WHERE tenant_id = $1 AND status IN ('pending', 'scheduled')
  UNION ALL
	SELECT kind, status FROM scheduler.job_state WHERE lease_expires_at IS NOT NULL AND status = 'running' AND tenant_id = $1
  UNION ALL
	SELECT kind, status FROM scheduler.job_state WHERE status IN ('succeeded', 'failed') AND updated_at >= $2 AND tenant_id = $1
  UNION ALL
	SELECT kind, status FROM scheduler.jobs j
	WHERE tenant_id = $1 AND (status IN ('pending', 'scheduled', 'running') OR status IN ('succeeded', 'failed') AND updated_at >= $2)
	  AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id AND s.tenant_id = $1)
) x GROUP BY kind, status`

// KindCounts implements driver.Insights.
func (db *DB) KindCounts(ctx context.Context, p driver.KindCountParams) ([]driver.KindCount, error) {
	rows, err := db.Pool.Query(ctx, kindCountsSQL, p.TenantID, p.Since)
	if err != nil {
		return nil, wrap("counting jobs by kind", err)
	}
	var out []driver.KindCount
	var kind, status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &status, &n}, func() error {
		out = driver.AddKindCount(out, kind, driver.Status(status), n)
		return nil
	})
	return driver.SortKindCounts(out), wrap("counting jobs by kind", err)
}

// LastPeriodic implements driver.Insights, over migration 013's partial
// index: the predicate is spelled as the index's, which is what lets the
// planner use it.
func (db *DB) LastPeriodic(ctx context.Context, tenant, name string) (driver.PeriodicRun, bool, error) {
	lo, hi := driver.PeriodicKeyRange(name)
	rows, err := db.Pool.Query(ctx, `SELECT job_id, idempotency_key, t_hlc FROM scheduler.scheduler_log
		WHERE tenant_id = $1 AND idempotency_key LIKE 'ordo.periodic:%'
		  AND idempotency_key COLLATE "C" >= $2 AND idempotency_key COLLATE "C" < $3
		ORDER BY idempotency_key COLLATE "C" DESC LIMIT $4`, tenant, lo, hi, driver.PeriodicScanLimit)
	if err != nil {
		return driver.PeriodicRun{}, false, wrap("finding periodic job "+name, err)
	}
	var entries []driver.PeriodicEntry
	var e driver.PeriodicEntry
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&id, &e.Key, &e.THLC}, func() error {
		e.JobID = id
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return driver.PeriodicRun{}, false, wrap("finding periodic job "+name, err)
	}
	run, ok := driver.LatestPeriodic(name, entries)
	return run, ok, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
