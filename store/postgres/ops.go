package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// PauseQueue implements driver.Operations.
func (db *DB) PauseQueue(ctx context.Context, p driver.PauseParams) error {
	q, by, now := p.Queue, p.By, p.Now
	if err := q.Validate(); err != nil {
		return err
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.paused_queues (tenant_id, kind, paused_at, paused_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, kind) DO NOTHING`, q.TenantID, q.Kind, now, by)
	return wrap("pausing queue "+q.String(), err)
}

// ResumeQueue implements driver.Operations.
func (db *DB) ResumeQueue(ctx context.Context, q driver.QueueKey) (bool, error) {
	if err := q.Validate(); err != nil {
		return false, err
	}
	tag, err := db.Pool.Exec(ctx, `DELETE FROM scheduler.paused_queues WHERE tenant_id = $1 AND kind = $2`, q.TenantID, q.Kind)
	if err != nil {
		return false, wrap("resuming queue "+q.String(), err)
	}
	return tag.RowsAffected() > 0, nil
}

// PausedQueues implements driver.Operations.
func (db *DB) PausedQueues(ctx context.Context, tenant string) ([]driver.PausedQueue, error) {
	rows, err := db.Pool.Query(ctx, `SELECT tenant_id, kind, paused_at, paused_by FROM scheduler.paused_queues
		WHERE $1 = '' OR tenant_id = $1 ORDER BY tenant_id, kind`, tenant)
	if err != nil {
		return nil, wrap("listing paused queues", err)
	}
	var out []driver.PausedQueue
	var p driver.PausedQueue
	_, err = pgx.ForEachRow(rows, []any{&p.TenantID, &p.Kind, &p.PausedAt, &p.PausedBy}, func() error {
		out = append(out, p)
		return nil
	})
	return out, wrap("listing paused queues", err)
}

// RetryJob implements driver.Operations. The HLC side decides when the job
// has one: its legacy row of a chain_violation job says failed, and must
// not make that job runnable again. The rows are locked legacy first, in
// the order a state change takes them (bothSidesOrder): in the other
// order, a retry of a running job racing its completion deadlocked.
func (db *DB) RetryJob(ctx context.Context, jobID uuid.UUID, now time.Time) error {
	return db.inTx(ctx, "retrying job "+jobID.String(), func(tx pgx.Tx) error {
		var hlcStatus, legacyStatus *string
		err := tx.QueryRow(ctx, `SELECT status FROM scheduler.jobs WHERE id = $1 FOR UPDATE`, jobID).Scan(&legacyStatus)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT status FROM scheduler.job_state WHERE job_id = $1 FOR UPDATE`, jobID).Scan(&hlcStatus)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		status := hlcStatus
		if status == nil {
			status = legacyStatus
		}
		switch {
		case status == nil:
			return driver.ErrJobNotFound
		case !driver.Status(*status).Retryable():
			return driver.ErrNotRetryable
		}
		const set = `SET status = 'pending', run_at = $2, attempts = 0, lease_owner = NULL, lease_token = NULL,
			lease_expires_at = NULL, updated_at = $2`
		if _, err := tx.Exec(ctx, `UPDATE scheduler.job_state `+set+` WHERE job_id = $1`, jobID, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE scheduler.jobs `+set+` WHERE id = $1`, jobID, now)
		return err
	})
}

// DeleteJob implements driver.Operations. Both rows are locked before
// either is judged, so a retry racing the delete either wins (nothing is
// deleted) or waits and finds no state; legacy first, as RetryJob.
func (db *DB) DeleteJob(ctx context.Context, jobID uuid.UUID) error {
	return db.inTx(ctx, "deleting job "+jobID.String(), func(tx pgx.Tx) error {
		var statuses []string
		for _, q := range []string{
			`SELECT status FROM scheduler.jobs WHERE id = $1 FOR UPDATE`,
			`SELECT status FROM scheduler.job_state WHERE job_id = $1 FOR UPDATE`,
		} {
			var st string
			switch err := tx.QueryRow(ctx, q, jobID).Scan(&st); {
			case err == nil:
				statuses = append(statuses, st)
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		if len(statuses) == 0 {
			return driver.ErrJobNotFound
		}
		for _, st := range statuses {
			if !driver.Status(st).Deletable() {
				return driver.ErrJobNotFinished
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM scheduler.job_state WHERE job_id = $1`, jobID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM scheduler.jobs WHERE id = $1`, jobID)
		return err
	})
}

// activityTenants lists the tenants with jobs on either side: a skip scan
// over each table's (tenant_id, ...) index.
const activityTenants = `
WITH RECURSIVE l AS (
	(SELECT tenant_id FROM scheduler.jobs ORDER BY tenant_id LIMIT 1)
	UNION ALL
	SELECT (SELECT j.tenant_id FROM scheduler.jobs j WHERE j.tenant_id > l.tenant_id ORDER BY j.tenant_id LIMIT 1)
	FROM l WHERE l.tenant_id IS NOT NULL
)
SELECT tenant_id FROM l WHERE tenant_id IS NOT NULL
UNION
SELECT tenant_id FROM scheduler.chain_heads
ORDER BY 1`

// tenantActivity reads one tenant's numbers. $1 tenant, $2 the window's
// start as a t_hlc lower bound, $3 the window's start.
const tenantActivity = `
SELECT
	(SELECT count(*) FROM scheduler.scheduler_log WHERE tenant_id = $1 AND t_hlc >= $2)
	+ (SELECT count(*) FROM scheduler.jobs j WHERE j.tenant_id = $1 AND j.created_at >= $3
	   AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id)),
	(SELECT count(*) FROM scheduler.job_state WHERE tenant_id = $1 AND status = 'succeeded' AND updated_at >= $3)
	+ (SELECT count(*) FROM scheduler.jobs j WHERE j.tenant_id = $1 AND j.status = 'succeeded' AND j.updated_at >= $3
	   AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id)),
	(SELECT job_id FROM scheduler.job_state WHERE tenant_id = $1 AND status IN ('pending', 'scheduled') AND status = 'pending'
	 ORDER BY t_hlc LIMIT 1),
	(SELECT t_hlc FROM scheduler.job_state WHERE tenant_id = $1 AND status IN ('pending', 'scheduled') AND status = 'pending'
	 ORDER BY t_hlc LIMIT 1),
	(SELECT id FROM scheduler.jobs j WHERE j.tenant_id = $1 AND j.status = 'pending'
	 AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id) ORDER BY created_at, id LIMIT 1),
	(SELECT created_at FROM scheduler.jobs j WHERE j.tenant_id = $1 AND j.status = 'pending'
	 AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id) ORDER BY created_at, id LIMIT 1),
	(SELECT t_hlc FROM scheduler.scheduler_log WHERE tenant_id = $1 ORDER BY t_hlc LIMIT 1),
	(SELECT min(created_at) FROM scheduler.jobs WHERE tenant_id = $1)`

// Tenants implements driver.Operations.
func (db *DB) Tenants(ctx context.Context) ([]string, error) {
	rows, err := db.Pool.Query(ctx, activityTenants)
	if err != nil {
		return nil, wrap("listing tenants", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, wrap("listing tenants", err)
}

// TenantActivity implements driver.Operations.
func (db *DB) TenantActivity(ctx context.Context, tenant string, since time.Time) ([]driver.TenantActivity, error) {
	tenants := []string{tenant}
	if tenant == "" {
		var err error
		if tenants, err = db.Tenants(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]driver.TenantActivity, 0, len(tenants))
	for _, t := range tenants {
		a := driver.TenantActivity{TenantID: t}
		var hlcID, legacyID *uuid.UUID
		var hlcAt, firstHLC *string
		var legacyAt, firstLegacy *time.Time
		if err := db.Pool.QueryRow(ctx, tenantActivity, t, driver.THLCLowerBound(since.UnixMilli()), since).Scan(
			&a.Enqueued, &a.Completed, &hlcID, &hlcAt, &legacyID, &legacyAt, &firstHLC, &firstLegacy); err != nil {
			return nil, wrap("reading the activity of tenant "+t, err)
		}
		a.OldestPending, a.OldestPendingAt = oldestPending(hlcID, hlcAt, legacyID, legacyAt)
		a.FirstEnqueuedAt = firstEnqueued(firstHLC, firstLegacy)
		out = append(out, a)
	}
	return out, nil
}

// oldestPending picks the older of a tenant's earliest pending job on the
// HLC side (enqueued at its t_hlc's physical time) and on the legacy side.
func oldestPending(hlcID *uuid.UUID, hlcAt *string, legacyID *uuid.UUID, legacyAt *time.Time) (uuid.UUID, time.Time) {
	var id uuid.UUID
	var at time.Time
	if hlcID != nil && hlcAt != nil {
		if ts, err := hlc.Parse(*hlcAt); err == nil {
			id, at = *hlcID, time.UnixMilli(ts.Physical).UTC()
		}
	}
	if legacyID != nil && legacyAt != nil && (id == uuid.Nil || legacyAt.Before(at)) {
		id, at = *legacyID, legacyAt.UTC()
	}
	return id, at
}

// firstEnqueued is the earlier of a tenant's first log entry (its t_hlc's
// physical time) and its oldest legacy row.
func firstEnqueued(hlcAt *string, legacyAt *time.Time) time.Time {
	var at time.Time
	if hlcAt != nil {
		if ts, err := hlc.Parse(*hlcAt); err == nil {
			at = time.UnixMilli(ts.Physical).UTC()
		}
	}
	if legacyAt != nil && (at.IsZero() || legacyAt.Before(at)) {
		at = legacyAt.UTC()
	}
	return at
}

// SaveVerification implements driver.Operations.
func (db *DB) SaveVerification(ctx context.Context, v driver.VerificationRecord) error {
	issues := v.Issues
	if len(issues) == 0 {
		issues = []byte("[]")
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.verification_results
		(tenant_id, verified_at, valid, entries_checked, issue_count, issues, source) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
		ON CONFLICT (tenant_id) DO UPDATE SET verified_at = EXCLUDED.verified_at, valid = EXCLUDED.valid,
		entries_checked = EXCLUDED.entries_checked, issue_count = EXCLUDED.issue_count, issues = EXCLUDED.issues, source = EXCLUDED.source`,
		v.TenantID, v.VerifiedAt, v.Valid, v.EntriesChecked, v.IssueCount, string(issues), v.Source)
	return wrap("saving the verification of tenant "+v.TenantID, err)
}

// Verifications implements driver.Operations.
func (db *DB) Verifications(ctx context.Context, tenant string) ([]driver.VerificationRecord, error) {
	rows, err := db.Pool.Query(ctx, `SELECT tenant_id, verified_at, valid, entries_checked, issue_count, issues::text, source
		FROM scheduler.verification_results WHERE $1 = '' OR tenant_id = $1 ORDER BY tenant_id`, tenant)
	if err != nil {
		return nil, wrap("reading verifications", err)
	}
	var out []driver.VerificationRecord
	var v driver.VerificationRecord
	var issues string
	_, err = pgx.ForEachRow(rows, []any{&v.TenantID, &v.VerifiedAt, &v.Valid, &v.EntriesChecked, &v.IssueCount, &issues, &v.Source}, func() error {
		v.Issues = []byte(issues)
		out = append(out, v)
		return nil
	})
	return out, wrap("reading verifications", err)
}

// ReportNode implements driver.Operations.
func (db *DB) ReportNode(ctx context.Context, n driver.NodeReport) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.nodes (node_id, started_at, last_seen, wall_ms, last_hlc, mode, clock_refusals)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (node_id) DO UPDATE SET started_at = EXCLUDED.started_at, last_seen = EXCLUDED.last_seen, wall_ms = EXCLUDED.wall_ms,
		last_hlc = EXCLUDED.last_hlc, mode = EXCLUDED.mode, clock_refusals = EXCLUDED.clock_refusals`,
		n.NodeID, n.StartedAt, n.Now, n.Now.UnixMilli(), n.LastHLC, n.Mode, n.ClockRefusals)
	return wrap("reporting node "+n.NodeID, err)
}

// Nodes implements driver.Operations.
func (db *DB) Nodes(ctx context.Context) ([]driver.NodeStatus, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT ids.node_id, n.started_at, n.last_seen, n.last_hlc, n.mode, n.clock_refusals, h.upper_bound_ms
		FROM (SELECT node_id FROM scheduler.nodes UNION SELECT node_id FROM scheduler.hlc_state) ids
		LEFT JOIN scheduler.nodes n ON n.node_id = ids.node_id
		LEFT JOIN scheduler.hlc_state h ON h.node_id = ids.node_id
		ORDER BY ids.node_id`)
	if err != nil {
		return nil, wrap("listing nodes", err)
	}
	var out []driver.NodeStatus
	var id string
	var started, seen *time.Time
	var last, mode *string
	var refusals, bound *int64
	_, err = pgx.ForEachRow(rows, []any{&id, &started, &seen, &last, &mode, &refusals, &bound}, func() error {
		n := driver.NodeStatus{NodeReport: driver.NodeReport{NodeID: id}}
		if seen != nil {
			n.Reported = true
			n.StartedAt, n.Now, n.LastHLC, n.Mode, n.ClockRefusals = started.UTC(), seen.UTC(), *last, *mode, *refusals
		}
		if bound != nil {
			n.HasUpperBound, n.UpperBoundMS = true, *bound
		}
		out = append(out, n)
		return nil
	})
	return out, wrap("listing nodes", err)
}

// RecordAction implements driver.Operations.
func (db *DB) RecordAction(ctx context.Context, a driver.OperatorAction) error {
	var job *uuid.UUID
	if a.JobID != uuid.Nil {
		job = &a.JobID
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.operator_actions (tenant_id, job_id, kind, action, actor, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.TenantID, job, a.Kind, a.Action, a.Actor, a.Detail, a.At)
	return wrap("recording an operator action", err)
}

// Actions implements driver.Operations.
func (db *DB) Actions(ctx context.Context, f driver.ActionFilter) ([]driver.OperatorAction, error) {
	var job *uuid.UUID
	if f.JobID != uuid.Nil {
		job = &f.JobID
	}
	rows, err := db.Pool.Query(ctx, `SELECT action_id, tenant_id, job_id, kind, action, actor, detail, at FROM scheduler.operator_actions
		WHERE tenant_id = $1 AND ($2::uuid IS NULL OR job_id = $2) ORDER BY action_id DESC LIMIT $3`, f.TenantID, job, f.EffectiveLimit())
	if err != nil {
		return nil, wrap("listing operator actions", err)
	}
	var out []driver.OperatorAction
	var a driver.OperatorAction
	var jobID *uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&a.ID, &a.TenantID, &jobID, &a.Kind, &a.Action, &a.Actor, &a.Detail, &a.At}, func() error {
		a.JobID = uuid.Nil
		if jobID != nil {
			a.JobID = *jobID
		}
		a.At = a.At.UTC()
		out = append(out, a)
		return nil
	})
	return out, wrap("listing operator actions", err)
}
