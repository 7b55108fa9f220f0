package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
)

// firstStartSet is the part of a lease's SET that records the job's first
// start (migration 012): the lease's time (?5) and how long the job had
// been due, from its run_at as it stands before this lease. COALESCE keeps
// both through later leases of the same job.
const firstStartSet = `started_at = COALESCE(started_at, ?5), start_wait_ms = COALESCE(start_wait_ms, max(0, ?5 - run_at))`

// liveActivitySQL is the PostgreSQL store's, for SQLite: the activity of
// each tenant of ?1 (a JSON array) in each minute of [?2, ?3) (Unix ms;
// ?4 and ?5 are the bounds as t_hlc lower bounds). The status terms are
// spelled as in the partial indexes' WHERE, which SQLite needs to use
// them, and the tenant terms of the time ranges are +tenant_id, which
// keeps SQLite from reading all of a tenant's jobs through a tenant index
// instead of the minutes' range.
const liveActivitySQL = `
	SELECT tenant_id, m, sum(enq) AS enq, sum(st) AS st, sum(ok) AS ok, sum(bad) AS bad, sum(wsum) AS wsum, max(wmax) AS wmax FROM (
		SELECT tenant_id, CAST(substr(t_hlc, 1, 13) AS INTEGER) / 60000 AS m, count(*) AS enq, 0 AS st, 0 AS ok, 0 AS bad,
		       0 AS wsum, 0 AS wmax
		FROM scheduler_log WHERE tenant_id IN (SELECT value FROM json_each(?1)) AND t_hlc >= ?4 AND t_hlc < ?5 GROUP BY 1, 2
	  UNION ALL
		SELECT tenant_id, created_at / 60000, count(*), 0, 0, 0, 0, 0
		FROM jobs j WHERE tenant_id IN (SELECT value FROM json_each(?1)) AND created_at >= ?2 AND created_at < ?3
		  AND NOT EXISTS (SELECT 1 FROM scheduler_log l WHERE l.job_id = j.id) GROUP BY 1, 2
	  UNION ALL
		SELECT tenant_id, started_at / 60000, 0, count(*), 0, 0, sum(start_wait_ms), max(start_wait_ms)
		FROM job_state WHERE started_at >= ?2 AND started_at < ?3 AND +tenant_id IN (SELECT value FROM json_each(?1)) GROUP BY 1, 2
	  UNION ALL
		SELECT tenant_id, started_at / 60000, 0, count(*), 0, 0, sum(start_wait_ms), max(start_wait_ms)
		FROM jobs j WHERE started_at >= ?2 AND started_at < ?3 AND +tenant_id IN (SELECT value FROM json_each(?1))
		  AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id AND s.started_at IS NOT NULL) GROUP BY 1, 2
	  UNION ALL
		SELECT tenant_id, updated_at / 60000, 0, 0, sum(status = 'succeeded'), sum(status = 'failed'), 0, 0
		FROM job_state WHERE status IN ('succeeded', 'cancelled', 'failed') AND updated_at >= ?2 AND updated_at < ?3
		  AND +tenant_id IN (SELECT value FROM json_each(?1)) GROUP BY 1, 2
	  UNION ALL
		SELECT tenant_id, updated_at / 60000, 0, 0, sum(status = 'succeeded'), sum(status = 'failed'), 0, 0
		FROM jobs j WHERE status IN ('succeeded', 'cancelled', 'failed') AND updated_at >= ?2 AND updated_at < ?3
		  AND +tenant_id IN (SELECT value FROM json_each(?1))
		  AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id) GROUP BY 1, 2
	)
	GROUP BY tenant_id, m`

// rollupSQL records liveActivitySQL's minutes that had any activity (a
// minute with only cancellations reads as zeros). WHERE is what SQLite's
// parser needs before an upsert's ON CONFLICT after a SELECT.
const rollupSQL = `
	INSERT INTO activity_minutes (tenant_id, minute, enqueued, started, succeeded, failed, wait_sum_ms, wait_max_ms)
	SELECT tenant_id, m * 60000, enq, st, ok, bad, wsum, wmax
	FROM (` + liveActivitySQL + `) AS live
	WHERE enq + st + ok + bad > 0
	ON CONFLICT (tenant_id, minute) DO UPDATE SET enqueued = excluded.enqueued, started = excluded.started,
		succeeded = excluded.succeeded, failed = excluded.failed, wait_sum_ms = excluded.wait_sum_ms, wait_max_ms = excluded.wait_max_ms`

// rolledSQL reads recorded minutes: ?1 tenant (empty: every tenant,
// summed), [?2, ?3).
const rolledSQL = `
	SELECT minute, sum(enqueued), sum(started), sum(succeeded), sum(failed), sum(wait_sum_ms), max(wait_max_ms)
	FROM activity_minutes WHERE (?1 = '' OR tenant_id = ?1) AND minute >= ?2 AND minute < ?3
	GROUP BY minute`

func (t *txn) activityTenants(tenant string) (string, error) {
	tenants := []string{tenant}
	if tenant == "" {
		var err error
		if tenants, err = t.tenants(); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(tenants)
	return string(b), err
}

// rolledUntil reads the rollup's watermark (zero before the first rollup).
func (t *txn) rolledUntil() (time.Time, error) {
	var at int64
	err := t.queryRow(`SELECT rolled_until FROM activity_rollup WHERE id = 1`).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, err
	}
	return fromMS(at), nil
}

// scanRolled reads a row of rolledSQL.
func scanRolled(r *sql.Rows) (driver.ActivityMinute, error) {
	var m driver.ActivityMinute
	var minute int64
	err := r.Scan(&minute, &m.Enqueued, &m.Started, &m.Succeeded, &m.Failed, &m.WaitSumMS, &m.WaitMaxMS)
	m.Minute = fromMS(minute)
	return m, err
}

// ActivityMinutes implements driver.Insights.
func (db *DB) ActivityMinutes(ctx context.Context, p driver.ActivityParams) ([]driver.ActivityMinute, error) {
	from, to := driver.MinuteOf(p.From), driver.MinuteOf(p.To)
	if !to.After(from) {
		return nil, nil
	}
	var out []driver.ActivityMinute
	err := db.inTx(ctx, "reading activity", func(t *txn) error {
		until, err := t.rolledUntil()
		if err != nil {
			return err
		}
		var rolled, live []driver.ActivityMinute
		if end := until; end.After(from) {
			if to.Before(end) {
				end = to
			}
			rows, err := t.query(rolledSQL, p.TenantID, ms(from), ms(end))
			if err != nil {
				return err
			}
			if rolled, err = collectRows(rows, scanRolled); err != nil {
				return err
			}
		}
		if start := from; to.After(until) {
			if until.After(start) {
				start = until
			}
			tenants, err := t.activityTenants(p.TenantID)
			if err != nil {
				return err
			}
			rows, err := t.query(liveActivitySQL, tenants, ms(start), ms(to),
				driver.THLCLowerBound(start.UnixMilli()), driver.THLCLowerBound(to.UnixMilli()))
			if err != nil {
				return err
			}
			// Rows are per tenant and minute; MergeActivity sums them.
			if live, err = collectRows(rows, func(r *sql.Rows) (driver.ActivityMinute, error) {
				var tenant string
				var m driver.ActivityMinute
				var minute int64
				err := r.Scan(&tenant, &minute, &m.Enqueued, &m.Started, &m.Succeeded, &m.Failed, &m.WaitSumMS, &m.WaitMaxMS)
				m.Minute = fromMS(minute * 60_000)
				return m, err
			}); err != nil {
				return err
			}
		}
		out = driver.MergeActivity(rolled, live)
		return nil
	})
	return out, err
}

// RollupActivity implements driver.Insights. SQLite runs one write
// transaction at a time, so concurrent rollups (every node maintains on a
// backend whose leadership is per file) take turns, and the second finds
// the window done.
func (db *DB) RollupActivity(ctx context.Context, p driver.RollupParams) (driver.RollupResult, error) {
	p = p.WithDefaults()
	var res driver.RollupResult
	err := db.inTx(ctx, "rolling up activity", func(t *txn) error {
		res = driver.RollupResult{}
		if _, err := t.exec(`INSERT INTO activity_rollup (id, rolled_until, updated_at) VALUES (1, ?1, ?2)
			ON CONFLICT (id) DO NOTHING`, ms(p.Start()), ms(p.Now)); err != nil {
			return err
		}
		until, err := t.rolledUntil()
		if err != nil {
			return err
		}
		from, to := p.Window(until)
		res.From, res.Until = from, to
		if !to.After(from) {
			res.Until = until
			return nil
		}
		tenants, err := t.activityTenants("")
		if err != nil {
			return err
		}
		n, err := t.affected(rollupSQL, tenants, ms(from), ms(to),
			driver.THLCLowerBound(from.UnixMilli()), driver.THLCLowerBound(to.UnixMilli()))
		if err != nil {
			return err
		}
		res.Rows = int(n)
		if _, err := t.exec(`UPDATE activity_rollup SET rolled_until = ?1, updated_at = ?2 WHERE id = 1`, ms(to), ms(p.Now)); err != nil {
			return err
		}
		_, err = t.exec(`DELETE FROM activity_minutes WHERE minute < ?1`, ms(p.Now.Add(-p.Keep)))
		return err
	})
	return res, err
}

// kindCountsSQL counts a tenant's jobs by kind and status: ?1 tenant, ?2
// the start of the finished jobs' window (ms), each part over a partial
// index, its terms spelled as the index's.
const kindCountsSQL = `
	SELECT kind, status, count(*) FROM (
		SELECT kind, status FROM job_state WHERE tenant_id = ?1 AND status IN ('pending', 'scheduled')
	  UNION ALL
		SELECT kind, status FROM job_state WHERE lease_expires_at IS NOT NULL AND status = 'running' AND tenant_id = ?1
	  UNION ALL
		SELECT kind, status FROM job_state WHERE status IN ('succeeded', 'cancelled', 'failed') AND updated_at >= ?2
		  AND status <> 'cancelled' AND tenant_id = ?1
	  UNION ALL
		SELECT kind, status FROM jobs j
		WHERE tenant_id = ?1 AND (status IN ('pending', 'scheduled', 'running') OR status IN ('succeeded', 'failed') AND updated_at >= ?2)
		  AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)
	)
	GROUP BY kind, status`

// KindCounts implements driver.Insights.
func (db *DB) KindCounts(ctx context.Context, p driver.KindCountParams) ([]driver.KindCount, error) {
	var out []driver.KindCount
	err := db.inTx(ctx, "counting jobs by kind", func(t *txn) error {
		out = nil
		rows, err := t.query(kindCountsSQL, p.TenantID, ms(p.Since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind, status string
			var n int64
			if err := rows.Scan(&kind, &status, &n); err != nil {
				return err
			}
			out = driver.AddKindCount(out, kind, driver.Status(status), n)
		}
		return rows.Err()
	})
	return driver.SortKindCounts(out), err
}

// lastPeriodicSQL reads a periodic job's greatest keys: ?1 tenant, [?2,
// ?3) the name's keys, ?4 how many. The LIKE term is migration 013's
// partial index's WHERE, which SQLite needs to see to use it.
const lastPeriodicSQL = `SELECT job_id, idempotency_key, t_hlc FROM scheduler_log
	WHERE tenant_id = ?1 AND idempotency_key LIKE 'ordo.periodic:%' AND idempotency_key >= ?2 AND idempotency_key < ?3
	ORDER BY idempotency_key DESC LIMIT ?4`

// LastPeriodic implements driver.Insights.
func (db *DB) LastPeriodic(ctx context.Context, tenant, name string) (driver.PeriodicRun, bool, error) {
	lo, hi := driver.PeriodicKeyRange(name)
	var entries []driver.PeriodicEntry
	err := db.inTx(ctx, "finding periodic job "+name, func(t *txn) error {
		rows, err := t.query(lastPeriodicSQL, tenant, lo, hi, driver.PeriodicScanLimit)
		if err != nil {
			return err
		}
		entries, err = collectRows(rows, func(r *sql.Rows) (driver.PeriodicEntry, error) {
			var e driver.PeriodicEntry
			var id string
			if err := r.Scan(&id, &e.Key, &e.THLC); err != nil {
				return e, err
			}
			e.JobID, err = uuid.Parse(id)
			return e, err
		})
		return err
	})
	if err != nil {
		return driver.PeriodicRun{}, false, err
	}
	run, ok := driver.LatestPeriodic(name, entries)
	return run, ok, nil
}
