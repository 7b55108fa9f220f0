package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// PauseQueue implements driver.Operations.
func (db *DB) PauseQueue(ctx context.Context, p driver.PauseParams) error {
	q, by, now := p.Queue, p.By, p.Now
	if err := q.Validate(); err != nil {
		return err
	}
	return db.inTx(ctx, "pausing queue "+q.String(), func(t *txn) error {
		_, err := t.exec(`INSERT INTO paused_queues (tenant_id, kind, paused_at, paused_by) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (tenant_id, kind) DO NOTHING`, q.TenantID, q.Kind, ms(now), by)
		return err
	})
}

// ResumeQueue implements driver.Operations.
func (db *DB) ResumeQueue(ctx context.Context, q driver.QueueKey) (bool, error) {
	if err := q.Validate(); err != nil {
		return false, err
	}
	var n int64
	err := db.inTx(ctx, "resuming queue "+q.String(), func(t *txn) error {
		var err error
		n, err = t.affected(`DELETE FROM paused_queues WHERE tenant_id = ?1 AND kind = ?2`, q.TenantID, q.Kind)
		return err
	})
	return n > 0, err
}

// PausedQueues implements driver.Operations.
func (db *DB) PausedQueues(ctx context.Context, tenant string) ([]driver.PausedQueue, error) {
	var out []driver.PausedQueue
	err := db.inTx(ctx, "listing paused queues", func(t *txn) error {
		out = nil
		rows, err := t.query(`SELECT tenant_id, kind, paused_at, paused_by FROM paused_queues
			WHERE ?1 = '' OR tenant_id = ?1 ORDER BY tenant_id, kind`, tenant)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.PausedQueue, error) {
			var p driver.PausedQueue
			var at int64
			if err := r.Scan(&p.TenantID, &p.Kind, &at, &p.PausedBy); err != nil {
				return p, err
			}
			p.PausedAt = fromMS(at)
			return p, nil
		})
		return err
	})
	return out, err
}

// RetryJob implements driver.Operations. The HLC side decides when the job
// has one: the legacy row of a chain_violation job says failed, and must
// not make that job runnable again.
func (db *DB) RetryJob(ctx context.Context, jobID uuid.UUID, now time.Time) error {
	return db.inTx(ctx, "retrying job "+jobID.String(), func(t *txn) error {
		var status string
		err := t.queryRow(`SELECT status FROM job_state WHERE job_id = ?1`, jobID.String()).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			err = t.queryRow(`SELECT status FROM jobs WHERE id = ?1`, jobID.String()).Scan(&status)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return driver.ErrJobNotFound
		case err != nil:
			return err
		case !driver.Status(status).Retryable():
			return driver.ErrNotRetryable
		}
		const set = `SET status = 'pending', run_at = ?2, attempts = 0, lease_owner = NULL, lease_token = NULL,
			lease_expires_at = NULL, updated_at = ?2`
		if _, err := t.exec(`UPDATE job_state `+set+` WHERE job_id = ?1`, jobID.String(), ms(now)); err != nil {
			return err
		}
		_, err = t.exec(`UPDATE jobs `+set+` WHERE id = ?1`, jobID.String(), ms(now))
		return err
	})
}

// DeleteJob implements driver.Operations.
func (db *DB) DeleteJob(ctx context.Context, jobID uuid.UUID) error {
	return db.inTx(ctx, "deleting job "+jobID.String(), func(t *txn) error {
		found := false
		for _, q := range []string{`SELECT status FROM job_state WHERE job_id = ?1`, `SELECT status FROM jobs WHERE id = ?1`} {
			var st string
			switch err := t.queryRow(q, jobID.String()).Scan(&st); {
			case errors.Is(err, sql.ErrNoRows):
				continue
			case err != nil:
				return err
			case !driver.Status(st).Deletable():
				return driver.ErrJobNotFinished
			}
			found = true
		}
		if !found {
			return driver.ErrJobNotFound
		}
		if _, err := t.exec(`DELETE FROM job_state WHERE job_id = ?1`, jobID.String()); err != nil {
			return err
		}
		_, err := t.exec(`DELETE FROM jobs WHERE id = ?1`, jobID.String())
		return err
	})
}

const (
	activityTenantsSQL = `SELECT DISTINCT tenant_id FROM jobs UNION SELECT tenant_id FROM chain_heads ORDER BY 1`

	// ?1 tenant, ?2 the window's start as a t_hlc lower bound, ?3 the
	// window's start (ms).
	tenantActivitySQL = `
		SELECT
			(SELECT count(*) FROM scheduler_log WHERE tenant_id = ?1 AND t_hlc >= ?2)
			+ (SELECT count(*) FROM jobs j WHERE j.tenant_id = ?1 AND j.created_at >= ?3
			   AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)),
			(SELECT count(*) FROM job_state WHERE tenant_id = ?1 AND status = 'succeeded' AND updated_at >= ?3)
			+ (SELECT count(*) FROM jobs j WHERE j.tenant_id = ?1 AND j.status = 'succeeded' AND j.updated_at >= ?3
			   AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)),
			(SELECT job_id FROM job_state WHERE tenant_id = ?1 AND status IN ('pending', 'scheduled') AND status = 'pending'
			 ORDER BY t_hlc LIMIT 1),
			(SELECT t_hlc FROM job_state WHERE tenant_id = ?1 AND status IN ('pending', 'scheduled') AND status = 'pending'
			 ORDER BY t_hlc LIMIT 1),
			(SELECT id FROM jobs j WHERE j.tenant_id = ?1 AND j.status IN ('pending', 'scheduled') AND j.status = 'pending'
			 AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id) ORDER BY created_at, id LIMIT 1),
			(SELECT created_at FROM jobs j WHERE j.tenant_id = ?1 AND j.status IN ('pending', 'scheduled') AND j.status = 'pending'
			 AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id) ORDER BY created_at, id LIMIT 1),
			(SELECT t_hlc FROM scheduler_log WHERE tenant_id = ?1 ORDER BY t_hlc LIMIT 1),
			(SELECT min(created_at) FROM jobs WHERE tenant_id = ?1)`
)

// Tenants implements driver.Operations.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	var out []string
	err := db.inTx(ctx, "listing tenants", func(t *txn) error {
		var err error
		out, err = t.tenants()
		return err
	})
	return out, err
}

func (t *txn) tenants() ([]string, error) {
	rows, err := t.query(activityTenantsSQL)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r *sql.Rows) (string, error) {
		var id string
		err := r.Scan(&id)
		return id, err
	})
}

// TenantActivity implements driver.Operations.
func (db *DB) TenantActivity(ctx context.Context, tenant string, since time.Time) ([]driver.TenantActivity, error) {
	var out []driver.TenantActivity
	err := db.inTx(ctx, "reading tenant activity", func(t *txn) error {
		out = nil
		tenants := []string{tenant}
		if tenant == "" {
			var err error
			if tenants, err = t.tenants(); err != nil {
				return err
			}
		}
		for _, id := range tenants {
			a := driver.TenantActivity{TenantID: id}
			var hlcID, hlcAt, legacyID, firstHLC sql.NullString
			var legacyAt, firstLegacy sql.NullInt64
			if err := t.queryRow(tenantActivitySQL, id, driver.THLCLowerBound(since.UnixMilli()), ms(since)).Scan(
				&a.Enqueued, &a.Completed, &hlcID, &hlcAt, &legacyID, &legacyAt, &firstHLC, &firstLegacy); err != nil {
				return err
			}
			if firstHLC.Valid {
				if ts, err := hlc.Parse(firstHLC.String); err == nil {
					a.FirstEnqueuedAt = fromMS(ts.Physical)
				}
			}
			if firstLegacy.Valid && (a.FirstEnqueuedAt.IsZero() || fromMS(firstLegacy.Int64).Before(a.FirstEnqueuedAt)) {
				a.FirstEnqueuedAt = fromMS(firstLegacy.Int64)
			}
			if hlcID.Valid {
				if ts, err := hlc.Parse(hlcAt.String); err == nil {
					a.OldestPending, _ = uuid.Parse(hlcID.String)
					a.OldestPendingAt = fromMS(ts.Physical)
				}
			}
			if legacyID.Valid && legacyAt.Valid && (a.OldestPending == uuid.Nil || fromMS(legacyAt.Int64).Before(a.OldestPendingAt)) {
				a.OldestPending, _ = uuid.Parse(legacyID.String)
				a.OldestPendingAt = fromMS(legacyAt.Int64)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// SaveVerification implements driver.Operations.
func (db *DB) SaveVerification(ctx context.Context, v driver.VerificationRecord) error {
	issues := v.Issues
	if len(issues) == 0 {
		issues = []byte("[]")
	}
	return db.inTx(ctx, "saving the verification of tenant "+v.TenantID, func(t *txn) error {
		_, err := t.exec(`INSERT INTO verification_results (tenant_id, verified_at, valid, entries_checked, issue_count, issues, source)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
			ON CONFLICT (tenant_id) DO UPDATE SET verified_at = excluded.verified_at, valid = excluded.valid,
			entries_checked = excluded.entries_checked, issue_count = excluded.issue_count, issues = excluded.issues, source = excluded.source`,
			v.TenantID, ms(v.VerifiedAt), v.Valid, v.EntriesChecked, v.IssueCount, string(issues), v.Source)
		return err
	})
}

// Verifications implements driver.Operations.
func (db *DB) Verifications(ctx context.Context, tenant string) ([]driver.VerificationRecord, error) {
	var out []driver.VerificationRecord
	err := db.inTx(ctx, "reading verifications", func(t *txn) error {
		out = nil
		rows, err := t.query(`SELECT tenant_id, verified_at, valid, entries_checked, issue_count, issues, source
			FROM verification_results WHERE ?1 = '' OR tenant_id = ?1 ORDER BY tenant_id`, tenant)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.VerificationRecord, error) {
			var v driver.VerificationRecord
			var at int64
			var issues string
			if err := r.Scan(&v.TenantID, &at, &v.Valid, &v.EntriesChecked, &v.IssueCount, &issues, &v.Source); err != nil {
				return v, err
			}
			v.VerifiedAt, v.Issues = fromMS(at), []byte(issues)
			return v, nil
		})
		return err
	})
	return out, err
}

// ReportNode implements driver.Operations.
func (db *DB) ReportNode(ctx context.Context, n driver.NodeReport) error {
	return db.inTx(ctx, "reporting node "+n.NodeID, func(t *txn) error {
		_, err := t.exec(`INSERT INTO nodes (node_id, started_at, last_seen, wall_ms, last_hlc, mode, clock_refusals)
			VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)
			ON CONFLICT (node_id) DO UPDATE SET started_at = excluded.started_at, last_seen = excluded.last_seen,
			wall_ms = excluded.wall_ms, last_hlc = excluded.last_hlc, mode = excluded.mode, clock_refusals = excluded.clock_refusals`,
			n.NodeID, ms(n.StartedAt), ms(n.Now), n.LastHLC, n.Mode, n.ClockRefusals)
		return err
	})
}

// Nodes implements driver.Operations.
func (db *DB) Nodes(ctx context.Context) ([]driver.NodeStatus, error) {
	var out []driver.NodeStatus
	err := db.inTx(ctx, "listing nodes", func(t *txn) error {
		out = nil
		rows, err := t.query(`
			SELECT ids.node_id, n.started_at, n.last_seen, n.last_hlc, n.mode, n.clock_refusals, h.upper_bound_ms
			FROM (SELECT node_id FROM nodes UNION SELECT node_id FROM hlc_state) ids
			LEFT JOIN nodes n ON n.node_id = ids.node_id
			LEFT JOIN hlc_state h ON h.node_id = ids.node_id
			ORDER BY ids.node_id`)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.NodeStatus, error) {
			var n driver.NodeStatus
			var started, seen, refusals, bound sql.NullInt64
			var last, mode sql.NullString
			if err := r.Scan(&n.NodeID, &started, &seen, &last, &mode, &refusals, &bound); err != nil {
				return n, err
			}
			if seen.Valid {
				n.Reported = true
				n.StartedAt, n.Now, n.LastHLC, n.Mode, n.ClockRefusals = fromMS(started.Int64), fromMS(seen.Int64), last.String, mode.String, refusals.Int64
			}
			if bound.Valid {
				n.HasUpperBound, n.UpperBoundMS = true, bound.Int64
			}
			return n, nil
		})
		return err
	})
	return out, err
}

// RecordAction implements driver.Operations.
func (db *DB) RecordAction(ctx context.Context, a driver.OperatorAction) error {
	return db.inTx(ctx, "recording an operator action", func(t *txn) error {
		_, err := t.exec(`INSERT INTO operator_actions (tenant_id, job_id, kind, action, actor, detail, at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`, a.TenantID, nullUUID(a.JobID), a.Kind, a.Action, a.Actor, a.Detail, ms(a.At))
		return err
	})
}

// Actions implements driver.Operations.
func (db *DB) Actions(ctx context.Context, f driver.ActionFilter) ([]driver.OperatorAction, error) {
	var out []driver.OperatorAction
	err := db.inTx(ctx, "listing operator actions", func(t *txn) error {
		out = nil
		rows, err := t.query(`SELECT action_id, tenant_id, job_id, kind, action, actor, detail, at FROM operator_actions
			WHERE tenant_id = ?1 AND (?2 IS NULL OR job_id = ?2) ORDER BY action_id DESC LIMIT ?3`,
			f.TenantID, nullUUID(f.JobID), f.EffectiveLimit())
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.OperatorAction, error) {
			var a driver.OperatorAction
			var job sql.NullString
			var at int64
			if err := r.Scan(&a.ID, &a.TenantID, &job, &a.Kind, &a.Action, &a.Actor, &a.Detail, &at); err != nil {
				return a, err
			}
			if job.Valid {
				a.JobID, _ = uuid.Parse(job.String)
			}
			a.At = fromMS(at)
			return a, nil
		})
		return err
	})
	return out, err
}
