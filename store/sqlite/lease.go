package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Picking candidates. Every pick query takes ?1 now, ?2 the kinds filter
// (a JSON array, NULL for all), ?3 the limit and, in its tenant variant,
// ?4 the tenant; it returns the job id and the columns of the read order.
// The status terms are spelled exactly as in the partial indexes' WHERE,
// which is what lets SQLite use those indexes.
const (
	kindFilter = `(?2 IS NULL OR kind IN (SELECT value FROM json_each(?2)))`

	// Leasing. ?1 the job ids (JSON array), ?2 owner, ?3 the dequeue's
	// secret, of which each job's token is derived (driver.LeaseToken), ?4
	// lease expiry, ?5 now.
	leaseSetLegacy = `SET status = 'running', attempts = attempts + 1, lease_owner = ?2, lease_token = ordo_lease_token(?3, id),
		lease_expires_at = ?4, updated_at = ?5, ` + firstStartSet
	leaseSetHLC = `SET status = 'running', attempts = attempts + 1, lease_owner = ?2, lease_token = ordo_lease_token(?3, job_id),
		lease_expires_at = ?4, updated_at = ?5, ` + firstStartSet
	leaseHLCSQL = `UPDATE job_state ` + leaseSetHLC + `
		WHERE job_id IN (SELECT value FROM json_each(?1)) AND status IN ('pending', 'scheduled')
		RETURNING job_id, tenant_id, partition_key, kind, t_hlc, attempts, max_attempts, run_at, metadata`
	leaseLegacySQL = `UPDATE jobs ` + leaseSetLegacy + `
		WHERE id IN (SELECT value FROM json_each(?1)) AND status IN ('pending', 'scheduled')
		RETURNING id, tenant_id, COALESCE(project_id, ''), kind, payload, priority, attempts, max_attempts, run_at, created_at, metadata`
	// The other side's row, if the job has one, gets the same lease.
	leaseOtherLegacySQL = `UPDATE jobs ` + leaseSetLegacy + ` WHERE id IN (SELECT value FROM json_each(?1))`
	leaseOtherHLCSQL    = `UPDATE job_state ` + leaseSetHLC + ` WHERE job_id IN (SELECT value FROM json_each(?1)) RETURNING job_id, t_hlc`

	// chainEntrySQL reads log entries with their predecessors; ?1 the job
	// ids, ?2 their tenant (empty for any). The entry is the one whose t_hlc
	// the job's HLC state names, when there is HLC state, so a forged
	// duplicate of a job id cannot stand in for it; for a pruned job (no
	// state) the tenant, which a job id names, keeps another tenant's
	// forgery out. The state is the tenant's when ?2 names one, as on
	// PostgreSQL (where job ids are unique per tenant only).
	chainEntrySQL = `
		SELECT l.job_id, l.tenant_id, l.partition_key, l.kind, l.payload, l.priority, l.created_at, l.max_attempts, l.run_at,
		       l.seq_bigint, l.chain_pos, l.t_hlc, l.payload_hash, l.prev_link, l.link, p.link, p.t_hlc
		FROM scheduler_log l
		LEFT JOIN job_state s ON s.job_id = l.job_id AND (?2 = '' OR s.tenant_id = ?2)
		LEFT JOIN scheduler_log p
		       ON p.tenant_id = l.tenant_id AND p.partition_key = l.partition_key AND p.chain_pos = l.chain_pos - 1
		WHERE l.job_id IN (SELECT value FROM json_each(?1)) AND (s.t_hlc IS NULL OR s.t_hlc = l.t_hlc) AND (?2 = '' OR l.tenant_id = ?2)
		ORDER BY l.seq_bigint`
)

// side describes where a job's state lives on one side of the guide's
// migration, which is all that differs between the two sides' picks: the
// rules (plain, strict partitions, active tenants for fair sharing) are
// written once below.
type side struct {
	table      string // the table (also the name its columns are qualified by)
	alias      string // its alias in joins
	id         string // the job id column, which is what a pick returns
	partition  string // the partition, as an expression over unqualified columns
	aPartition string // the same over the alias
	order      string // read order, over unqualified columns
	headOrder  string // chain order within a partition, over unqualified columns
}

var (
	hlcSide = side{table: "job_state", alias: "s", id: "job_id",
		partition: "partition_key", aPartition: "s.partition_key", order: "t_hlc", headOrder: "t_hlc"}
	legacySide = side{table: "jobs", alias: "j", id: "id",
		partition: "COALESCE(project_id, '')", aPartition: "COALESCE(j.project_id, '')",
		order: "priority DESC, created_at, id", headOrder: "created_at, id"}
)

// notPaused is the paused-queue test on the side's rows named by ref (the
// table's name, or its alias): a job is skipped when its tenant's whole
// queue (the empty kind) or its kind's queue is paused. The lookup is a
// primary key search, and reads an empty table when nothing is paused.
func notPaused(ref string) string {
	return `NOT EXISTS (SELECT 1 FROM paused_queues pq WHERE pq.tenant_id = ` + ref + `.tenant_id AND pq.kind IN ('', ` + ref + `.kind))`
}

// aliased qualifies each comma-separated term of a list by alias.
func aliased(alias, list string) string {
	terms := strings.Split(list, ", ")
	for i, t := range terms {
		terms[i] = alias + "." + t
	}
	return strings.Join(terms, ", ")
}

// pickPlain picks the side's available jobs in its read order, of one
// tenant (?4) when forTenant.
func pickPlain(sd side, forTenant bool) string {
	tenant := ""
	if forTenant {
		tenant = "tenant_id = ?4 AND "
	}
	return `
		SELECT ` + sd.id + ` FROM ` + sd.table + `
		WHERE status IN ('pending', 'scheduled') AND ` + tenant + `run_at <= ?1 AND ` + kindFilter + ` AND ` + notPaused(sd.table) + `
		ORDER BY ` + sd.order + ` LIMIT ?3`
}

// pickStrict picks only the head of each (tenant, partition), the earliest
// job in chain order not yet finished, when it is available. A skip scan
// over the side's partition-head index finds each head with at most two
// index seeks per partition (the next partition of the same tenant, else
// the first of the next tenant), however long the backlog; the CROSS JOIN
// keeps the handful of heads as the outer loop. %[1]s is the tenant term
// (pickQuery).
func pickStrict(sd side) string {
	a, head := sd.alias, "tenant_id, "+sd.partition+", "+sd.headOrder
	return `
		WITH RECURSIVE h(rid, tenant_id, partition_key) AS (
			SELECT * FROM (
				SELECT rowid, tenant_id, ` + sd.partition + ` FROM ` + sd.table + `
				WHERE status IN ('pending', 'scheduled', 'running') %[1]s
				ORDER BY ` + head + ` LIMIT 1)
			UNION ALL
			SELECT ` + a + `.rowid, ` + a + `.tenant_id, ` + sd.aPartition + ` FROM h CROSS JOIN ` + sd.table + ` ` + a + ` ON ` + a + `.rowid = COALESCE(
				(SELECT rowid FROM ` + sd.table + `
				 WHERE status IN ('pending', 'scheduled', 'running') AND tenant_id = h.tenant_id AND ` + sd.partition + ` > h.partition_key
				 ORDER BY ` + head + ` LIMIT 1),
				(SELECT rowid FROM ` + sd.table + `
				 WHERE status IN ('pending', 'scheduled', 'running') AND tenant_id > h.tenant_id %[1]s
				 ORDER BY ` + head + ` LIMIT 1))
		)
		SELECT ` + aliased(a, sd.id) + ` FROM h CROSS JOIN ` + sd.table + ` ` + a + ` ON ` + a + `.rowid = h.rid
		WHERE ` + a + `.status IN ('pending', 'scheduled') AND ` + a + `.run_at <= ?1 AND (?2 IS NULL OR ` + a + `.kind IN (SELECT value FROM json_each(?2)))
		  AND ` + notPaused(a) + `
		ORDER BY ` + aliased(a, sd.order) + ` LIMIT ?3`
}

// pickFair is driver.PickFair, the algorithm PostgreSQL's pickFair runs:
// the tenants with available jobs by a skip scan over the side's
// per-tenant dequeue index (one seek per tenant), their turns starting
// after ?4 (wrapping around), each tenant's earliest ?3 available jobs
// (a correlated rowid subquery stands in for PostgreSQL's LATERAL join),
// interleaved by (n-th job of its tenant, turn).
func pickFair(sd side) string {
	a, order := sd.alias, aliased(sd.alias, sd.order)
	return `
		WITH RECURSIVE t(tenant_id) AS (
			SELECT min(tenant_id) FROM ` + sd.table + ` WHERE status IN ('pending', 'scheduled')
			UNION ALL
			SELECT (SELECT min(tenant_id) FROM ` + sd.table + ` WHERE status IN ('pending', 'scheduled') AND tenant_id > t.tenant_id)
			FROM t WHERE t.tenant_id IS NOT NULL
		), turns AS (
			SELECT tenant_id, row_number() OVER (ORDER BY tenant_id <= ?4, tenant_id) AS turn
			FROM t WHERE tenant_id IS NOT NULL
		), cand AS (
			SELECT ` + aliased(a, sd.id) + `, tu.turn, row_number() OVER (PARTITION BY tu.turn ORDER BY ` + order + `) AS rn
			FROM turns tu CROSS JOIN ` + sd.table + ` ` + a + ` ON ` + a + `.rowid IN (
				SELECT rowid FROM ` + sd.table + `
				WHERE status IN ('pending', 'scheduled') AND tenant_id = tu.tenant_id AND run_at <= ?1 AND ` + kindFilter + `
				  AND ` + notPaused(sd.table) + `
				ORDER BY ` + sd.order + ` LIMIT ?3)
		)
		SELECT ` + sd.id + ` FROM cand ORDER BY rn, turn LIMIT ?3`
}

// The picks, built once.
var (
	pickHLCSQL, pickHLCTenantSQL       = pickPlain(hlcSide, false), pickPlain(hlcSide, true)
	pickLegacySQL, pickLegacyTenantSQL = pickPlain(legacySide, false), pickPlain(legacySide, true)
	strictHLCHeads, strictLegacyHeads  = pickStrict(hlcSide), pickStrict(legacySide)
	pickHLCFairSQL, pickLegacyFairSQL  = pickFair(hlcSide), pickFair(legacySide)
)

// pickQuery returns the candidate query for p's rule and its arguments:
// ?1 now, ?2 kinds, ?3 limit, ?4 the tenant (plain and strict, when one
// is set) or the tenant the last fair round ended with (fair).
func pickQuery(p driver.DequeueParams) (string, []any) {
	args := []any{ms(p.Now), kindList(p.Kinds), p.Limit}
	rule, hlcOrder, tenant := p.Rule(), p.HLCOrder, p.TenantID
	if rule == driver.PickFair {
		return choose(hlcOrder, pickHLCFairSQL, pickLegacyFairSQL), append(args, p.FairAfter)
	}
	tenantTerm := ""
	if tenant != "" {
		args = append(args, tenant)
		tenantTerm = "AND tenant_id = ?4"
	}
	switch {
	case rule == driver.PickStrict:
		return fmt.Sprintf(choose(hlcOrder, strictHLCHeads, strictLegacyHeads), tenantTerm), args
	case tenant != "":
		return choose(hlcOrder, pickHLCTenantSQL, pickLegacyTenantSQL), args
	}
	return choose(hlcOrder, pickHLCSQL, pickLegacySQL), args
}

// choose is the HLC side's query when hlcOrder, else the legacy side's.
func choose(hlcOrder bool, hlc, legacy string) string {
	if hlcOrder {
		return hlc
	}
	return legacy
}

// candidates chooses up to p.Limit jobs, in the order they are to be
// leased.
func (t *txn) candidates(p driver.DequeueParams) ([]uuid.UUID, error) {
	q, args := pickQuery(p)
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r *sql.Rows) (uuid.UUID, error) {
		var id uuid.UUID
		err := r.Scan(&id)
		return id, err
	})
}

// Dequeue implements driver.Driver. SQLite has one writer at a time, so no
// concurrent dequeuer can hold a candidate: the whole choice and lease run
// under the transaction's write lock.
func (db *DB) Dequeue(ctx context.Context, p driver.DequeueParams) ([]driver.Lease, error) {
	if p.Limit <= 0 {
		return nil, db.closedErr("dequeue")
	}
	var leases []driver.Lease
	err := db.inTx(ctx, "dequeue", func(t *txn) error {
		var err error
		leases, err = t.dequeue(p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return leases, nil
}

func (t *txn) dequeue(p driver.DequeueParams) ([]driver.Lease, error) {
	ids, err := t.candidates(p)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	list := idList(ids)
	args := []any{list, p.Owner, p.Token.String(), ms(p.LeaseUntil), ms(p.Now)}
	byID := make(map[uuid.UUID]*driver.Lease, len(ids))
	newLease := func(id uuid.UUID) *driver.Lease {
		l := &driver.Lease{JobID: id, Owner: p.Owner, Token: driver.LeaseToken(p.Token, id), ExpiresAt: p.LeaseUntil}
		byID[id] = l
		return l
	}

	var entries map[uuid.UUID]*driver.LoggedJob
	if p.HLCOrder {
		rows, err := t.query(leaseHLCSQL, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			var runAt int64
			var metadata sql.NullString
			var l driver.Lease
			if err := rows.Scan(&id, &l.TenantID, &l.PartitionKey, &l.Kind, &l.THLC, &l.Attempt, &l.MaxAttempts, &runAt, &metadata); err != nil {
				rows.Close()
				return nil, err
			}
			nl := newLease(id)
			nl.TenantID, nl.PartitionKey, nl.Kind, nl.THLC, nl.Attempt, nl.MaxAttempts = l.TenantID, l.PartitionKey, l.Kind, l.THLC, l.Attempt, l.MaxAttempts
			nl.RunAt = fromMS(runAt)
			if nl.Metadata, err = driver.DecodeMetadata([]byte(metadata.String)); err != nil {
				rows.Close()
				return nil, fmt.Errorf("job %s: %w", id, err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if _, err := t.exec(leaseOtherLegacySQL, args...); err != nil {
			return nil, err
		}
		if entries, err = t.chainEntries(list, ""); err != nil {
			return nil, err
		}
		for id, l := range byID {
			r, ok := entries[id]
			if !ok {
				return nil, fmt.Errorf("job %s has HLC state but no log entry", id)
			}
			l.Payload, l.Priority, l.CreatedAt = r.Payload, r.Priority, r.CreatedAt
		}
	} else {
		rows, err := t.query(leaseLegacySQL, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			var l driver.Lease
			var payload string
			var runAt, createdAt int64
			var metadata sql.NullString
			if err := rows.Scan(&id, &l.TenantID, &l.PartitionKey, &l.Kind, &payload, &l.Priority, &l.Attempt, &l.MaxAttempts,
				&runAt, &createdAt, &metadata); err != nil {
				rows.Close()
				return nil, err
			}
			if l.Metadata, err = driver.DecodeMetadata([]byte(metadata.String)); err != nil {
				rows.Close()
				return nil, fmt.Errorf("job %s: %w", id, err)
			}
			l.JobID, l.Payload, l.RunAt, l.CreatedAt = id, []byte(payload), fromMS(runAt), fromMS(createdAt)
			l.Owner, l.Token, l.ExpiresAt = p.Owner, driver.LeaseToken(p.Token, id), p.LeaseUntil
			*newLease(id) = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rows, err = t.query(leaseOtherHLCSQL, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id uuid.UUID
			var tHLC string
			if err := rows.Scan(&id, &tHLC); err != nil {
				rows.Close()
				return nil, err
			}
			if l := byID[id]; l != nil {
				l.THLC = tHLC
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if p.WithChain {
			if entries, err = t.chainEntries(list, ""); err != nil {
				return nil, err
			}
		}
	}

	leases := make([]driver.Lease, 0, len(byID))
	for _, id := range ids {
		l := byID[id]
		if l == nil {
			continue
		}
		if r, ok := entries[id]; ok && p.WithChain {
			e := r.Entry
			l.Chain = &e
		}
		leases = append(leases, *l)
	}
	return leases, nil
}

func (t *txn) chainEntries(list, tenant string) (map[uuid.UUID]*driver.LoggedJob, error) {
	rows, err := t.query(chainEntrySQL, list, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]*driver.LoggedJob{}
	for rows.Next() {
		var id uuid.UUID
		var r driver.LoggedJob
		var payload string
		var createdAt, runAt int64
		var hash, prev, link, predLink []byte
		var predTHLC sql.NullString
		e := &r.Entry
		if err := rows.Scan(&id, &r.TenantID, &r.PartitionKey, &r.Kind, &payload, &r.Priority, &createdAt, &r.MaxAttempts, &runAt,
			&e.Seq, &e.Pos, &e.THLC, &hash, &prev, &link, &predLink, &predTHLC); err != nil {
			return nil, err
		}
		if _, dup := out[id]; dup {
			continue
		}
		r.Payload, r.CreatedAt, r.RunAt = []byte(payload), fromMS(createdAt), fromMS(runAt)
		e.Payload = r.Payload
		e.SetStoredHashes(hash, prev, link)
		if predTHLC.Valid {
			e.HasPredecessor = true
			e.PredecessorTHLC = predTHLC.String
			e.PredecessorLink, _ = chain.HashFromBytes(predLink)
		}
		out[id] = &r
	}
	return out, rows.Err()
}

// Fenced state changes. ?1 job id, ?2 lease token, and after the change's
// own parameters the job's tenant (empty for any: ?8 of a transition, ?5 of
// an extension, ?6 of a chain violation, ?4 of a cancel), which fences as
// the token does. A transition keeps the token (see the PostgreSQL
// store's transitionsSet); one with an error text ends a failed attempt,
// kept in the attempt history.
var (
	transitionSet = `SET status = ?3, run_at = COALESCE(?4, run_at), last_error = COALESCE(NULLIF(?5, ''), last_error),
		attempt_errors = CASE WHEN ?5 = '' THEN attempt_errors ELSE ` + attemptErrorsAfter("?7", "?5") + ` END,
		attempts = max(attempts - ?6, 0), lease_owner = NULL, lease_expires_at = NULL, updated_at = ?7`
	transitionLegacySQL = `UPDATE jobs ` + transitionSet + ` WHERE id = ?1 AND lease_token = ?2 AND status = 'running' AND (?8 = '' OR tenant_id = ?8)`
	transitionHLCSQL    = `UPDATE job_state ` + transitionSet + ` WHERE job_id = ?1 AND lease_token = ?2 AND status = 'running' AND (?8 = '' OR tenant_id = ?8)`

	extendLegacySQL = `UPDATE jobs SET lease_expires_at = ?3, updated_at = ?4
		WHERE id = ?1 AND lease_token = ?2 AND status = 'running' AND (?5 = '' OR tenant_id = ?5)`
	extendHLCSQL = `UPDATE job_state SET lease_expires_at = ?3, updated_at = ?4
		WHERE job_id = ?1 AND lease_token = ?2 AND status = 'running' AND (?5 = '' OR tenant_id = ?5)`

	violationSet = `SET status = ?3, last_error = ?4, attempt_errors = ` + attemptErrorsAfter("?5", "?4") + `,
		lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?5`
	violationLegacySQL = `UPDATE jobs ` + violationSet + ` WHERE id = ?1 AND lease_token = ?2 AND status = 'running' AND (?6 = '' OR tenant_id = ?6)`
	violationHLCSQL    = `UPDATE job_state ` + violationSet + ` WHERE job_id = ?1 AND lease_token = ?2 AND status = 'running' AND (?6 = '' OR tenant_id = ?6)`

	cancelSet = `SET status = 'cancelled', last_error = COALESCE(NULLIF(?2, ''), last_error),
		lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?3`
	cancelLegacySQL = `UPDATE jobs ` + cancelSet + ` WHERE id = ?1 AND status IN ('pending', 'scheduled', 'running') AND (?4 = '' OR tenant_id = ?4)`
	cancelHLCSQL    = `UPDATE job_state ` + cancelSet + ` WHERE job_id = ?1 AND status IN ('pending', 'scheduled', 'running') AND (?4 = '' OR tenant_id = ?4)`
	existsSQL       = `SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND (?2 = '' OR tenant_id = ?2))
		OR EXISTS (SELECT 1 FROM job_state WHERE job_id = ?1 AND (?2 = '' OR tenant_id = ?2))`
)

// bothSides runs the legacy form of one change with legacyArgs and its
// HLC form with hlcArgs, and returns how many rows the two changed.
func (t *txn) bothSides(legacySQL string, legacyArgs []any, hlcSQL string, hlcArgs []any) (int64, error) {
	a, err := t.affected(legacySQL, legacyArgs...)
	if err != nil {
		return 0, err
	}
	b, err := t.affected(hlcSQL, hlcArgs...)
	if err != nil {
		return 0, err
	}
	return a + b, nil
}

// fenced runs the legacy and the HLC form of one change, with the same
// arguments, and returns ErrLeaseLost when neither changed a row.
func (t *txn) fenced(legacySQL, hlcSQL string, args ...any) error {
	return leaseLost(t.bothSides(legacySQL, args, hlcSQL, args))
}

// leaseLost is ErrLeaseLost when a lease-fenced change changed no row.
func leaseLost(changed int64, err error) error {
	if err == nil && changed == 0 {
		return driver.ErrLeaseLost
	}
	return err
}

// TransitionJob implements driver.Driver. A retry or snooze (pending or
// scheduled) is stored as pending when its run_at has come, else as
// scheduled.
func (db *DB) TransitionJob(ctx context.Context, tr driver.Transition) error {
	status, runAt, undo := transitionArgs(tr)
	return db.inTx(ctx, "finishing job "+tr.JobID.String(), func(t *txn) error {
		return t.fenced(transitionLegacySQL, transitionHLCSQL, tr.JobID.String(), tr.Token.String(), status, runAt, tr.Error, undo, ms(tr.Now), tr.TenantID)
	})
}

// TransitionJobTx implements driver.Driver.
func (db *DB) TransitionJobTx(ctx context.Context, tx any, tr driver.Transition) error {
	sqlTx, ok := tx.(*sql.Tx)
	if !ok || sqlTx == nil {
		return fmt.Errorf("sqlite: TransitionJobTx needs a *sql.Tx, got %T", tx)
	}
	if err := db.closedErr("finishing job " + tr.JobID.String()); err != nil {
		return err
	}
	status, runAt, undo := transitionArgs(tr)
	t := &txn{ctx: ctx, db: db, tx: sqlTx}
	return wrapErr("finishing job "+tr.JobID.String(),
		t.fenced(transitionLegacySQL, transitionHLCSQL, tr.JobID.String(), tr.Token.String(), status, runAt, tr.Error, undo, ms(tr.Now), tr.TenantID))
}

// TransitionJobs implements driver.Driver: one transaction,
// so one commit, for a batch of finished jobs.
func (db *DB) TransitionJobs(ctx context.Context, ts []driver.Transition) ([]error, error) {
	out := make([]error, len(ts))
	err := db.inTx(ctx, fmt.Sprintf("finishing %d jobs", len(ts)), func(t *txn) error {
		for i, tr := range ts {
			status, runAt, undo := transitionArgs(tr)
			err := t.fenced(transitionLegacySQL, transitionHLCSQL, tr.JobID.String(), tr.Token.String(), status, runAt, tr.Error, undo, ms(tr.Now), tr.TenantID)
			switch {
			case errors.Is(err, driver.ErrLeaseLost):
				out[i] = err
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// transitionArgs are the stored status, run_at and attempt correction of
// a transition.
func transitionArgs(tr driver.Transition) (status string, runAt any, undo int) {
	status = string(tr.Status)
	if tr.Status == driver.StatusPending || tr.Status == driver.StatusScheduled {
		status = string(driver.StatusScheduled)
		if !tr.RunAt.After(tr.Now) {
			status = string(driver.StatusPending)
		}
		runAt = ms(tr.RunAt)
	}
	if tr.UndoAttempt {
		undo = 1
	}
	return status, runAt, undo
}

// ExtendLease implements driver.Driver.
func (db *DB) ExtendLease(ctx context.Context, p driver.ExtendParams) error {
	jobID, token, until, now := p.JobID, p.Token, p.Until, p.Now
	return db.inTx(ctx, "extending the lease of job "+jobID.String(), func(t *txn) error {
		return t.fenced(extendLegacySQL, extendHLCSQL, jobID.String(), token.String(), ms(until), ms(now), p.TenantID)
	})
}

// MarkChainViolation implements driver.Driver. The legacy table has no
// chain_violation status, so the legacy row (if any) ends failed; both
// carry the reason. Fenced: ErrLeaseLost if token holds no lease.
func (db *DB) MarkChainViolation(ctx context.Context, p driver.ViolationParams) error {
	jobID, token, reason, now := p.JobID, p.Token, p.Reason, p.Now
	msg := "chain violation: " + reason
	return db.inTx(ctx, "marking job "+jobID.String()+" as a chain violation", func(t *txn) error {
		return leaseLost(t.bothSides(
			violationLegacySQL, []any{jobID.String(), token.String(), string(driver.StatusFailed), msg, ms(now), p.TenantID},
			violationHLCSQL, []any{jobID.String(), token.String(), string(driver.StatusChainViolation), msg, ms(now), p.TenantID}))
	})
}

// CancelJob implements driver.Driver.
func (db *DB) CancelJob(ctx context.Context, p driver.CancelParams) error {
	jobID, reason, now := p.JobID, p.Reason, p.Now
	return db.inTx(ctx, "cancelling job "+jobID.String(), func(t *txn) error {
		args := []any{jobID.String(), reason, ms(now), p.TenantID}
		n, err := t.bothSides(cancelLegacySQL, args, cancelHLCSQL, args)
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		var exists bool
		if err := t.queryRow(existsSQL, jobID.String(), p.TenantID).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return driver.ErrJobFinished
		}
		return driver.ErrJobNotFound
	})
}

// rescueError is the error an expired lease ends its attempt with.
const rescueError = `(CASE WHEN attempts >= max_attempts
	THEN 'lease expired on the last attempt (owner ' || COALESCE(lease_owner, '?') || ')'
	ELSE 'lease expired (owner ' || COALESCE(lease_owner, '?') || ')' END)`

// Rescuing expired leases. ?1 now, ?2 limit; then ?1 the job ids.
var (
	expiredHLCSQL = `
		SELECT job_id, lease_expires_at FROM job_state
		WHERE status = 'running' AND lease_expires_at < ?1 ORDER BY lease_expires_at LIMIT ?2`
	expiredLegacySQL = `
		SELECT id, lease_expires_at FROM jobs
		WHERE status = 'running' AND lease_expires_at < ?1 ORDER BY lease_expires_at LIMIT ?2`
	rescueSet = `SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
		last_error = ` + rescueError + `, attempt_errors = ` + attemptErrorsAfter("?2", rescueError) + `,
		run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE ?2 END,
		lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ?2`
	rescueHLCSQL = `UPDATE job_state ` + rescueSet + `
		WHERE job_id IN (SELECT value FROM json_each(?1)) AND status = 'running' RETURNING job_id, status`
	rescueLegacySQL = `UPDATE jobs ` + rescueSet + `
		WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'running' RETURNING id, status`
)

// RescueExpired implements driver.Driver: the limit jobs whose leases
// expired first, on whichever side, are returned to pending (or failed)
// on both sides.
func (db *DB) RescueExpired(ctx context.Context, p driver.RescueParams) (driver.RescueResult, error) {
	rescued, failed, err := db.rescueExpired(ctx, p.Now, p.Limit)
	return driver.RescueResult{Rescued: rescued, Failed: failed}, err
}

// jobValue is a row of a job id and one value of it.
type jobValue[V any] struct {
	id uuid.UUID
	v  V
}

// jobValues reads the (job id, value) rows of query.
func jobValues[V any](t *txn, query string, args ...any) ([]jobValue[V], error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	return collectRows(rows, func(r *sql.Rows) (jobValue[V], error) {
		var jv jobValue[V]
		err := r.Scan(&jv.id, &jv.v)
		return jv, err
	})
}

func (db *DB) rescueExpired(ctx context.Context, now time.Time, limit int) (rescued, failed int, err error) {
	if limit <= 0 {
		return 0, 0, db.closedErr("rescuing expired leases")
	}
	err = db.inTx(ctx, "rescuing expired leases", func(t *txn) error {
		rescued, failed = 0, 0
		expiry := map[uuid.UUID]int64{}
		for _, q := range []string{expiredHLCSQL, expiredLegacySQL} {
			expired, err := jobValues[int64](t, q, ms(now), limit)
			if err != nil {
				return err
			}
			for _, e := range expired {
				if old, ok := expiry[e.id]; !ok || e.v < old {
					expiry[e.id] = e.v
				}
			}
		}
		if len(expiry) == 0 {
			return nil
		}
		ids := make([]uuid.UUID, 0, len(expiry))
		for id := range expiry {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int {
			if c := cmp.Compare(expiry[a], expiry[b]); c != 0 {
				return c
			}
			return cmp.Compare(a.String(), b.String())
		})
		ids = ids[:min(len(ids), limit)]
		list := idList(ids)
		outcome := map[uuid.UUID]string{}
		// The legacy side first, so the HLC side's outcome wins where a
		// job has both (they agree unless the sides diverged).
		for _, q := range []string{rescueLegacySQL, rescueHLCSQL} {
			statuses, err := jobValues[string](t, q, list, ms(now))
			if err != nil {
				return err
			}
			for _, st := range statuses {
				outcome[st.id] = st.v
			}
		}
		for _, s := range outcome {
			if s == string(driver.StatusFailed) {
				failed++
			} else {
				rescued++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return rescued, failed, nil
}

const (
	getLegacySQL = `
		SELECT tenant_id, COALESCE(project_id, ''), kind, payload, payload_digest, priority, status, attempts, max_attempts,
		       run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata
		FROM jobs WHERE id = ?1 AND (?2 = '' OR tenant_id = ?2)`
	getHLCSQL = `
		SELECT tenant_id, partition_key, kind, status, attempts, max_attempts, run_at, updated_at,
		       lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata
		FROM job_state WHERE job_id = ?1 AND (?2 = '' OR tenant_id = ?2)`
)

// leaseCols are the nullable lease columns, last_error and (where read)
// attempt_errors of a row.
type leaseCols struct {
	owner, token, lastErr, history, metadata sql.NullString
	expires                                  sql.NullInt64
}

func (c *leaseCols) apply(info *driver.JobInfo) error {
	info.LeaseOwner, info.LeaseToken, info.LeaseExpiresAt, info.LastError = c.owner.String, uuid.UUID{}, time.Time{}, c.lastErr.String
	var err error
	if info.AttemptErrors, err = driver.DecodeAttemptErrors([]byte(c.history.String)); err != nil {
		return fmt.Errorf("job %s: %w", info.JobID, err)
	}
	if info.Metadata, err = driver.DecodeMetadata([]byte(c.metadata.String)); err != nil {
		return fmt.Errorf("job %s: %w", info.JobID, err)
	}
	if c.token.Valid {
		var err error
		if info.LeaseToken, err = uuid.Parse(c.token.String); err != nil {
			return fmt.Errorf("job %s: lease token: %w", info.JobID, err)
		}
	}
	if c.expires.Valid {
		info.LeaseExpiresAt = fromMS(c.expires.Int64)
	}
	return nil
}

// GetJob implements driver.Driver.
func (db *DB) GetJob(ctx context.Context, ref driver.JobRef) (driver.JobInfo, error) {
	jobID := ref.JobID
	var info driver.JobInfo
	err := db.inTx(ctx, "reading job "+jobID.String(), func(t *txn) error {
		info = driver.JobInfo{JobID: jobID}
		id := jobID.String()
		var payload, digest, status string
		var runAt, createdAt, updatedAt int64
		var lc leaseCols
		err := t.queryRow(getLegacySQL, id, ref.TenantID).Scan(&info.TenantID, &info.PartitionKey, &info.Kind, &payload, &digest, &info.Priority,
			&status, &info.Attempts, &info.MaxAttempts, &runAt, &createdAt, &updatedAt, &lc.owner, &lc.token, &lc.expires, &lc.lastErr, &lc.history, &lc.metadata)
		switch {
		case err == nil:
			info.InLegacy = true
			info.Payload, info.Status = []byte(payload), driver.Status(status)
			info.PayloadHash, _ = chain.ParseHash(digest)
			info.RunAt, info.CreatedAt, info.UpdatedAt = fromMS(runAt), fromMS(createdAt), fromMS(updatedAt)
			if err := lc.apply(&info); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		lc = leaseCols{}
		var tenant, partition, kind string
		var attempts, maxAttempts int
		err = t.queryRow(getHLCSQL, id, ref.TenantID).Scan(&tenant, &partition, &kind, &status, &attempts, &maxAttempts, &runAt, &updatedAt,
			&lc.owner, &lc.token, &lc.expires, &lc.lastErr, &lc.history, &lc.metadata)
		switch {
		case err == nil:
			info.InHLC = true
			info.TenantID, info.PartitionKey, info.Kind = tenant, partition, kind
			info.Status, info.Attempts, info.MaxAttempts = driver.Status(status), attempts, maxAttempts
			info.RunAt, info.UpdatedAt = fromMS(runAt), fromMS(updatedAt)
			if err := lc.apply(&info); err != nil {
				return err
			}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		entries, err := t.chainEntries(idList([]uuid.UUID{jobID}), ref.TenantID)
		if err != nil {
			return err
		}
		return info.CompleteFromLog(entries[jobID])
	})
	if err != nil {
		return driver.JobInfo{}, err
	}
	return info, nil
}

const (
	legacyOnlyCols = `SELECT id, tenant_id, COALESCE(project_id, ''), kind, payload, payload_digest, priority, status, attempts,
		max_attempts, run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error
		FROM jobs j
		WHERE status IN ('pending', 'scheduled', 'running') AND NOT EXISTS (SELECT 1 FROM job_state s WHERE s.job_id = j.id)`
	legacyOnlySQL       = legacyOnlyCols + ` ORDER BY created_at, id LIMIT ?1`
	legacyOnlyTenantSQL = legacyOnlyCols + ` AND tenant_id = ?2 ORDER BY created_at, id LIMIT ?1`
)

// LegacyOnly implements driver.Driver.
func (db *DB) LegacyOnly(ctx context.Context, tenantID string, limit int) ([]driver.JobInfo, error) {
	if limit <= 0 {
		return nil, db.closedErr("listing legacy-only jobs")
	}
	var out []driver.JobInfo
	err := db.inTx(ctx, "listing legacy-only jobs", func(t *txn) error {
		out = nil
		q, args := legacyOnlySQL, []any{limit}
		if tenantID != "" {
			q, args = legacyOnlyTenantSQL, append(args, tenantID)
		}
		rows, err := t.query(q, args...)
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r *sql.Rows) (driver.JobInfo, error) {
			var info driver.JobInfo
			var payload, digest, status string
			var runAt, createdAt, updatedAt int64
			var lc leaseCols
			if err := r.Scan(&info.JobID, &info.TenantID, &info.PartitionKey, &info.Kind, &payload, &digest, &info.Priority, &status,
				&info.Attempts, &info.MaxAttempts, &runAt, &createdAt, &updatedAt, &lc.owner, &lc.token, &lc.expires, &lc.lastErr); err != nil {
				return info, err
			}
			info.Payload, info.Status, info.InLegacy = []byte(payload), driver.Status(status), true
			info.PayloadHash, _ = chain.ParseHash(digest)
			info.RunAt, info.CreatedAt, info.UpdatedAt = fromMS(runAt), fromMS(createdAt), fromMS(updatedAt)
			if err := lc.apply(&info); err != nil {
				return info, err
			}
			return info, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// drainSQL copies HLC-only unfinished jobs to the legacy table; ?1 limit,
// ?2 now.
const drainSQL = `
	INSERT INTO jobs (id, tenant_id, project_id, kind, payload, payload_digest, priority, status, attempts,
		max_attempts, run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata)
	SELECT s.job_id, s.tenant_id, NULLIF(s.partition_key, ''), s.kind, l.payload, lower(hex(l.payload_hash)),
		l.priority, s.status, s.attempts, s.max_attempts, s.run_at, l.created_at, ?2,
		s.lease_owner, s.lease_token, s.lease_expires_at, s.last_error, s.attempt_errors, s.metadata
	FROM job_state s JOIN scheduler_log l
	  ON l.tenant_id = s.tenant_id AND l.t_hlc = s.t_hlc AND l.partition_key = s.partition_key AND l.job_id = s.job_id
	WHERE s.status IN ('pending', 'scheduled', 'running')
	  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = s.job_id)
	ORDER BY s.t_hlc LIMIT ?1`

// DrainToLegacy implements driver.Driver.
func (db *DB) DrainToLegacy(ctx context.Context, limit int, now time.Time) (int, error) {
	if limit <= 0 {
		return 0, db.closedErr("draining HLC-only jobs to the legacy table")
	}
	var n int64
	err := db.inTx(ctx, "draining HLC-only jobs to the legacy table", func(t *txn) error {
		var err error
		n, err = t.affected(drainSQL, limit, ms(now))
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// TryLead implements driver.Leadership.
func (db *DB) TryLead(ctx context.Context, p driver.LeadParams) (bool, error) {
	name, holder, until, now := p.Name, p.Holder, p.Until, p.Now
	var led bool
	err := db.inTx(ctx, "electing the leader of "+name, func(t *txn) error {
		var got string
		err := t.queryRow(`
			INSERT INTO leadership (name, holder, expires_at, updated_at) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, updated_at = excluded.updated_at
			WHERE leadership.holder = excluded.holder OR leadership.expires_at < ?4
			RETURNING holder`, name, holder, ms(until), ms(now)).Scan(&got)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			led = false
			return nil
		case err != nil:
			return err
		}
		led = got == holder
		return nil
	})
	return led, err
}

// Resign implements driver.Leadership.
func (db *DB) Resign(ctx context.Context, name, holder string) error {
	return db.inTx(ctx, "resigning the leadership of "+name, func(t *txn) error {
		_, err := t.exec(`DELETE FROM leadership WHERE name = ?1 AND holder = ?2`, name, holder)
		return err
	})
}
