package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Dequeue implements driver.Driver. The side being read is locked with
// FOR UPDATE SKIP LOCKED, so concurrent dequeuers never wait for or take
// each other's jobs; the other side's row, if any, gets the same lease in
// the same transaction.
func (db *DB) Dequeue(ctx context.Context, p driver.DequeueParams) ([]driver.Lease, error) {
	var leases []driver.Lease
	var err error
	for range maxRetries {
		if leases, err = dequeue(ctx, db, p); !retryable(err) {
			break
		}
	}
	return leases, wrap("dequeue", err)
}

// A dequeue is one statement, so one round trip: it picks candidates
// (FOR UPDATE SKIP LOCKED, so concurrent dequeuers never wait for or take
// each other's jobs), leases them on the side being read, gives the other
// side's row (if any) the same lease, and returns what the worker needs.
// Parameters: $1 now, $2 limit, $3 kinds (NULL for all), $4 tenant (''
// for all), $5 owner, $6 token, $7 lease expiry, $8 the tenant the last
// fair round ended with (fair only). The status test inside the locking
// SELECT is re-checked after a lock wait, which is what keeps a
// just-leased job from being leased twice under strict partitions.

// side describes where a job's state lives on one side of the guide's
// migration, which is all that differs between the two sides' picks: the
// rules (plain, strict partitions, fair tenants) are written once below.
type side struct {
	table     string // qualified table
	name      string // its unqualified name, for unaliased columns
	alias     string // its alias in joins
	id        string // the job id column
	partition string // the partition, as an expression over unaliased columns
	order     string // read order, over unaliased columns
	headOrder string // chain order within a partition, over unaliased columns
}

var (
	hlcSide = side{table: "scheduler.job_state", name: "job_state", alias: "s", id: "job_id",
		partition: "partition_key", order: "t_hlc", headOrder: "t_hlc"}
	legacySide = side{table: "scheduler.jobs", name: "jobs", alias: "j", id: "id",
		partition: "COALESCE(project_id, '')", order: "priority DESC, created_at, id", headOrder: "created_at, id"}
)

// notPaused is the paused-queue test (scheduler.paused_queues, migration
// 006) on the side's rows named by ref (the table's name, or its alias): a
// job is skipped when its tenant's whole queue (the empty kind) or its
// kind's queue is paused; with no pause at all the anti-join reads an
// empty table.
func notPaused(ref string) string {
	return `NOT EXISTS (SELECT 1 FROM scheduler.paused_queues pq WHERE pq.tenant_id = ` + ref + `.tenant_id AND pq.kind IN ('', ` + ref + `.kind))`
}

// ofTenant is the dequeue's tenant test ($4, empty for every tenant) on the
// rows named by ref. A tenant's dequeue repeats it on every table it
// reads, not only where the pick starts: rows reached by job id alone
// would be the same rows, but a distributed PostgreSQL (docs/scaling.md)
// routes a statement to one tenant's shards only when each of its table
// references says which tenant (distribution_test.go checks the plans).
// With an empty $4 it folds away.
func ofTenant(ref string) string {
	return `($4 = '' OR ` + ref + `.tenant_id = $4)`
}

// aliased qualifies each comma-separated term of an order by alias.
func aliased(alias, order string) string {
	terms := strings.Split(order, ", ")
	for i, t := range terms {
		terms[i] = alias + "." + t
	}
	return strings.Join(terms, ", ")
}

// pickPlain picks the side's available jobs in its read order: a CTE
// picked(id).
func pickPlain(sd side) string {
	return `picked AS (
	SELECT ` + sd.id + ` FROM ` + sd.table + `
	WHERE status IN ('pending', 'scheduled') AND run_at <= $1
	  AND ($3::text[] IS NULL OR kind = ANY($3)) AND ($4 = '' OR tenant_id = $4)
	  AND ` + notPaused(sd.name) + `
	ORDER BY ` + sd.order + `
	LIMIT $2
	FOR UPDATE SKIP LOCKED
)`
}

// pickStrict picks only the head of each (tenant, partition), the earliest
// job in chain order not yet finished, when it is available.
func pickStrict(sd side) string {
	a := sd.alias
	return `heads AS (
	SELECT DISTINCT ON (tenant_id, ` + sd.partition + `) ` + sd.id + `, status, run_at, kind
	FROM ` + sd.table + `
	WHERE status IN ('pending', 'scheduled', 'running') AND ($4 = '' OR tenant_id = $4)
	ORDER BY tenant_id, ` + sd.partition + `, ` + sd.headOrder + `
), picked AS (
	SELECT ` + a + `.` + sd.id + ` FROM ` + sd.table + ` ` + a + ` JOIN heads h ON h.` + sd.id + ` = ` + a + `.` + sd.id + `
	WHERE h.status IN ('pending', 'scheduled') AND h.run_at <= $1 AND ($3::text[] IS NULL OR h.kind = ANY($3))
	  AND ` + a + `.status IN ('pending', 'scheduled') AND ` + ofTenant(a) + ` AND ` + notPaused(a) + `
	ORDER BY ` + aliased(a, sd.order) + `
	LIMIT $2
	FOR UPDATE OF ` + a + ` SKIP LOCKED
)`
}

// pickFair is driver.PickFair, the algorithm SQLite's pickFair runs: each
// tenant's earliest available jobs, interleaved round by round (every
// tenant's first job, then every tenant's second, ...), each round
// starting with the tenant after $8 (so consecutive fetches take turns).
// The tenants come from a skip scan over the (tenant_id, ...) index: one
// probe per tenant, whatever the backlog.
func pickFair(sd side) string {
	a, order := sd.alias, aliased(sd.alias, sd.order)
	return `tenants AS (
	(SELECT tenant_id FROM ` + sd.table + ` ORDER BY tenant_id LIMIT 1)
	UNION ALL
	SELECT (SELECT ` + a + `.tenant_id FROM ` + sd.table + ` ` + a + ` WHERE ` + a + `.tenant_id > t.tenant_id ORDER BY ` + a + `.tenant_id LIMIT 1)
	FROM tenants t WHERE t.tenant_id IS NOT NULL
), turns AS (
	SELECT tenant_id, row_number() OVER (ORDER BY tenant_id <= $8, tenant_id) AS turn
	FROM tenants WHERE tenant_id IS NOT NULL
), cand AS (
	SELECT c.` + sd.id + `, c.rn, t.turn FROM turns t CROSS JOIN LATERAL (
		SELECT ` + a + `.` + sd.id + `, row_number() OVER (ORDER BY ` + order + `) AS rn
		FROM ` + sd.table + ` ` + a + `
		WHERE ` + a + `.tenant_id = t.tenant_id AND ` + a + `.status IN ('pending', 'scheduled') AND ` + a + `.run_at <= $1
		  AND ($3::text[] IS NULL OR ` + a + `.kind = ANY($3)) AND ($4 = '' OR $4 = $4) AND ` + notPaused(a) + `
		ORDER BY ` + order + ` LIMIT $2
	) c
), picked AS (
	SELECT ` + a + `.` + sd.id + ` FROM ` + sd.table + ` ` + a + `
	JOIN (SELECT ` + sd.id + ` FROM cand ORDER BY rn, turn LIMIT $2) c ON c.` + sd.id + ` = ` + a + `.` + sd.id + `
	WHERE ` + a + `.status IN ('pending', 'scheduled')
	FOR UPDATE OF ` + a + ` SKIP LOCKED
)`
}

// The six picks, built once.
var (
	pickHLC, pickHLCStrict, pickHLCFair          = pickPlain(hlcSide), pickStrict(hlcSide), pickFair(hlcSide)
	pickLegacy, pickLegacyStrict, pickLegacyFair = pickPlain(legacySide), pickStrict(legacySide), pickFair(legacySide)

	// picksByRule is each rule's pick, [legacy side, HLC side].
	picksByRule = map[driver.PickRule][2]string{
		driver.PickPlain:  {pickLegacy, pickHLC},
		driver.PickStrict: {pickLegacyStrict, pickHLCStrict},
		driver.PickFair:   {pickLegacyFair, pickHLCFair},
	}
)

// lockOther takes the other side's rows of the picked jobs, skipping
// those another transaction holds, and keeps as ready the picked jobs whose
// other row it got or that have none. A dequeue therefore never waits for
// a lock: an HLC reader and a legacy reader on one backlog (two nodes
// during a mode switch) each hold their own side's row of a job and would
// otherwise each wait for the other's, a deadlock PostgreSQL breaks only
// after deadlock_timeout. A job skipped here stays for the next fetch.
func lockOther(sd, other side) string {
	return `, other AS (
	SELECT ` + other.id + ` AS id FROM ` + other.table + ` WHERE ` + other.id + ` IN (SELECT ` + sd.id + ` FROM picked) AND ` + ofTenant(other.table) + `
	FOR UPDATE SKIP LOCKED
), ready AS (
	SELECT p.` + sd.id + ` FROM picked p
	WHERE p.` + sd.id + ` IN (SELECT id FROM other)
	   OR NOT EXISTS (SELECT 1 FROM ` + other.table + ` o WHERE o.` + other.id + ` = p.` + sd.id + ` AND ` + ofTenant("o") + `)
)`
}

// leaseHLC leases the picked jobs on the HLC side and mirrors the lease
// on their legacy rows; the final SELECT joins each job's log entry (the
// one whose t_hlc job_state names, so a forged duplicate of a job id
// cannot stand in for it) for its payload, and with chain, its
// predecessor for VerifyOnDequeue. A job whose entry is missing comes
// back with NULLs, which dequeue reports.
var leaseHLC = lockOther(hlcSide, legacySide) + `, upd AS (
	UPDATE scheduler.job_state s
	SET status = 'running', attempts = s.attempts + 1, lease_owner = $5, lease_token = ` + leaseTokenSQL("s.job_id") + `, lease_expires_at = $7, updated_at = $1,
	    ` + firstStartSet("s") + `
	FROM ready WHERE s.job_id = ready.job_id AND ` + ofTenant("s") + `
	RETURNING s.job_id, s.tenant_id, s.partition_key, s.t_hlc, s.attempts, s.max_attempts, s.run_at, s.metadata
), legacy AS (
	UPDATE scheduler.jobs j
	SET status = 'running', attempts = j.attempts + 1, lease_owner = $5, lease_token = ` + leaseTokenSQL("j.id") + `, lease_expires_at = $7, updated_at = $1,
	    ` + firstStartSet("j") + `
	FROM upd WHERE j.id = upd.job_id AND ` + ofTenant("j") + `
)
SELECT u.job_id, u.t_hlc, u.attempts, u.max_attempts, u.run_at, u.tenant_id, u.partition_key,
       l.kind, l.payload, l.priority, l.created_at, u.metadata::text`

const leaseHLCChainCols = `,
       l.seq_bigint, l.chain_pos, l.payload_hash, l.prev_link, l.link, p.link, p.t_hlc`

var leaseHLCFrom = `
FROM upd u
LEFT JOIN scheduler.scheduler_log l
       ON l.tenant_id = u.tenant_id AND l.t_hlc = u.t_hlc AND l.partition_key = u.partition_key AND l.job_id = u.job_id AND ` + ofTenant("l")

var leaseHLCPredecessor = `
LEFT JOIN scheduler.scheduler_log p
       ON p.tenant_id = l.tenant_id AND p.partition_key = l.partition_key AND p.chain_pos = l.chain_pos - 1 AND ` + ofTenant("p")

// leaseLegacy leases the picked jobs on the legacy side and mirrors the
// lease on their HLC state, whose t_hlc it returns (NULL for a job that
// exists only in the legacy table).
var leaseLegacy = lockOther(legacySide, hlcSide) + `, upd AS (
	UPDATE scheduler.jobs j
	SET status = 'running', attempts = j.attempts + 1, lease_owner = $5, lease_token = ` + leaseTokenSQL("j.id") + `, lease_expires_at = $7, updated_at = $1,
	    ` + firstStartSet("j") + `
	FROM ready WHERE j.id = ready.id AND ` + ofTenant("j") + `
	RETURNING j.id, j.tenant_id, COALESCE(j.project_id, '') AS partition_key, j.kind, j.payload::text AS payload, j.priority,
	          j.attempts, j.max_attempts, j.run_at, j.created_at, j.metadata::text AS metadata
), hlc AS (
	UPDATE scheduler.job_state s
	SET status = 'running', attempts = s.attempts + 1, lease_owner = $5, lease_token = ` + leaseTokenSQL("s.job_id") + `, lease_expires_at = $7, updated_at = $1,
	    ` + firstStartSet("s") + `
	FROM upd WHERE s.job_id = upd.id AND ` + ofTenant("s") + `
	RETURNING s.job_id, s.t_hlc
)
SELECT u.id, u.tenant_id, u.partition_key, u.kind, u.payload, u.priority, u.attempts, u.max_attempts, u.run_at, u.created_at, h.t_hlc,
       u.metadata
FROM upd u LEFT JOIN hlc h ON h.job_id = u.id`

// dequeueSQL is the statement of a dequeue with these parameters: the
// pick of p's rule (driver.PickRule) on the side it reads, then the lease.
func dequeueSQL(p driver.DequeueParams) string {
	picks := picksByRule[p.Rule()]
	with := "WITH "
	if p.Rule() == driver.PickFair {
		with = "WITH RECURSIVE "
	}
	if !p.HLCOrder {
		return with + picks[0] + leaseLegacy
	}
	if p.WithChain {
		return with + picks[1] + leaseHLC + leaseHLCChainCols + leaseHLCFrom + leaseHLCPredecessor
	}
	return with + picks[1] + leaseHLC + leaseHLCFrom
}

// chainEntrySelect reads log entries with their predecessors; $1 job ids,
// $2 their tenant (empty for any). The entry is the one whose t_hlc job_state
// names, when there is HLC state, so a forged duplicate of a job id cannot
// stand in for it; for a pruned job (no state) the tenant, which a job id
// names, keeps another tenant's forgery out. The state is the tenant's
// ($2) when it is given, so the statement reads one tenant's rows only
// (distribution_test.go); without it, the state of the job id in any
// tenant, so that a forged entry in another tenant meets the real job's.
const chainEntrySelect = `
SELECT l.job_id, l.tenant_id, l.partition_key, l.kind, l.payload, l.priority, l.created_at, l.max_attempts, l.run_at,
       l.seq_bigint, l.chain_pos, l.t_hlc, l.payload_hash, l.prev_link, l.link, p.link, p.t_hlc
FROM scheduler.scheduler_log l
LEFT JOIN scheduler.job_state s ON s.job_id = l.job_id AND ($2 = '' OR s.tenant_id = $2)
LEFT JOIN scheduler.scheduler_log p
       ON p.tenant_id = l.tenant_id AND p.partition_key = l.partition_key AND p.chain_pos = l.chain_pos - 1
WHERE l.job_id = ANY($1) AND (s.t_hlc IS NULL OR s.t_hlc = l.t_hlc) AND ($2 = '' OR l.tenant_id = $2)
ORDER BY l.seq_bigint`

// fillChainEntry sets the hashes of e from their stored bytes.
func fillChainEntry(e *driver.ChainEntry, payload, hash, prev, link, predLink []byte, predTHLC *string) {
	e.Payload = payload
	e.SetStoredHashes(hash, prev, link)
	if predTHLC != nil {
		e.HasPredecessor = true
		e.PredecessorTHLC = *predTHLC
		e.PredecessorLink, _ = chain.HashFromBytes(predLink)
	}
}

func readChainEntries(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ids []uuid.UUID, tenant string) (map[uuid.UUID]*driver.LoggedJob, error) {
	rows, err := q.Query(ctx, chainEntrySelect, ids, tenant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]*driver.LoggedJob{}
	for rows.Next() {
		var id uuid.UUID
		var r driver.LoggedJob
		var payload string
		var hash, prev, link, predLink []byte
		var predTHLC *string
		if err := rows.Scan(&id, &r.TenantID, &r.PartitionKey, &r.Kind, &payload, &r.Priority, &r.CreatedAt, &r.MaxAttempts, &r.RunAt,
			&r.Entry.Seq, &r.Entry.Pos, &r.Entry.THLC, &hash, &prev, &link, &predLink, &predTHLC); err != nil {
			return nil, err
		}
		r.Payload = []byte(payload)
		fillChainEntry(&r.Entry, r.Payload, hash, prev, link, predLink, predTHLC)
		if _, dup := out[id]; !dup {
			out[id] = &r
		}
	}
	return out, rows.Err()
}

func dequeue(ctx context.Context, db *DB, p driver.DequeueParams) ([]driver.Lease, error) {
	var kinds []string
	if len(p.Kinds) > 0 {
		kinds = p.Kinds
	}
	args := []any{p.Now, p.Limit, kinds, p.TenantID, p.Owner, p.Token, p.LeaseUntil}
	fair := p.Rule() == driver.PickFair
	if fair {
		args = append(args, p.FairAfter)
	}
	rows, err := db.Pool.Query(ctx, dequeueSQL(p), args...)
	if err != nil {
		return nil, err
	}
	var leases []driver.Lease
	if p.HLCOrder {
		leases, err = scanHLCLeases(rows, p)
	} else {
		leases, err = scanLegacyLeases(rows, p)
	}
	if err != nil || len(leases) == 0 {
		return nil, err
	}
	// UPDATE ... RETURNING does not promise the order of the selection;
	// a fair batch keeps the order of its turns instead.
	if !fair && p.HLCOrder {
		slices.SortFunc(leases, func(a, b driver.Lease) int { return strings.Compare(a.THLC, b.THLC) })
	}
	if !fair && !p.HLCOrder {
		slices.SortFunc(leases, func(a, b driver.Lease) int {
			return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.CreatedAt.Compare(b.CreatedAt), bytes.Compare(a.JobID[:], b.JobID[:]))
		})
	}
	if p.WithChain && !p.HLCOrder {
		ids := make([]uuid.UUID, 0, len(leases))
		for _, l := range leases {
			if l.THLC != "" {
				ids = append(ids, l.JobID)
			}
		}
		if len(ids) > 0 {
			entries, err := readChainEntries(ctx, db.Pool, ids, p.TenantID)
			if err != nil {
				return nil, err
			}
			for i := range leases {
				if r, ok := entries[leases[i].JobID]; ok {
					e := r.Entry
					leases[i].Chain = &e
				}
			}
		}
	}
	return leases, nil
}

// scanHLCLeases reads the rows of an HLC dequeue.
func scanHLCLeases(rows pgx.Rows, p driver.DequeueParams) ([]driver.Lease, error) {
	defer rows.Close()
	var leases []driver.Lease
	var missing []uuid.UUID
	for rows.Next() {
		l := driver.Lease{Owner: p.Owner, ExpiresAt: p.LeaseUntil}
		var kind, payload *string
		var priority *int
		var createdAt *time.Time
		var metadata []byte
		dest := []any{&l.JobID, &l.THLC, &l.Attempt, &l.MaxAttempts, &l.RunAt, &l.TenantID, &l.PartitionKey, &kind, &payload, &priority, &createdAt, &metadata}
		var r driver.LoggedJob
		var hash, prev, link, predLink []byte
		var predTHLC *string
		var seq, pos *int64
		if p.WithChain {
			dest = append(dest, &seq, &pos, &hash, &prev, &link, &predLink, &predTHLC)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		l.Token = driver.LeaseToken(p.Token, l.JobID)
		if kind == nil {
			missing = append(missing, l.JobID)
			continue
		}
		l.Kind, l.Payload, l.Priority, l.CreatedAt = *kind, []byte(*payload), *priority, *createdAt
		var err error
		if l.Metadata, err = driver.DecodeMetadata(metadata); err != nil {
			return nil, fmt.Errorf("job %s: %w", l.JobID, err)
		}
		if p.WithChain {
			r.Entry.THLC, r.Entry.Seq, r.Entry.Pos = l.THLC, *seq, *pos
			fillChainEntry(&r.Entry, l.Payload, hash, prev, link, predLink, predTHLC)
			e := r.Entry
			l.Chain = &e
		}
		leases = append(leases, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("jobs %v have HLC state but no log entry; their leases expire and are rescued, and `ordo verify` reports the gap", missing)
	}
	return leases, nil
}

// scanLegacyLeases reads the rows of a legacy dequeue.
func scanLegacyLeases(rows pgx.Rows, p driver.DequeueParams) ([]driver.Lease, error) {
	defer rows.Close()
	var leases []driver.Lease
	for rows.Next() {
		l := driver.Lease{Owner: p.Owner, ExpiresAt: p.LeaseUntil}
		var payload string
		var thlc *string
		var metadata []byte
		if err := rows.Scan(&l.JobID, &l.TenantID, &l.PartitionKey, &l.Kind, &payload, &l.Priority, &l.Attempt, &l.MaxAttempts,
			&l.RunAt, &l.CreatedAt, &thlc, &metadata); err != nil {
			return nil, err
		}
		var err error
		if l.Metadata, err = driver.DecodeMetadata(metadata); err != nil {
			return nil, fmt.Errorf("job %s: %w", l.JobID, err)
		}
		l.Token = driver.LeaseToken(p.Token, l.JobID)
		l.Payload = []byte(payload)
		if thlc != nil {
			l.THLC = *thlc
		}
		leases = append(leases, l)
	}
	return leases, rows.Err()
}

// fencedUpdate runs the same fenced UPDATE on both sides in one implicit
// transaction and reports how many rows each changed.
func (db *DB) fencedUpdate(ctx context.Context, what, legacySQL, hlcSQL string, args ...any) (int64, error) {
	batch := &pgx.Batch{}
	for _, q := range bothSidesOrder(legacySQL, hlcSQL) {
		batch.Queue(q, args...)
	}
	br := db.Pool.SendBatch(ctx, batch)
	var n int64
	for range batch.Len() {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return 0, wrap(what, err)
		}
		n += tag.RowsAffected()
	}
	if err := br.Close(); err != nil {
		return 0, wrap(what, err)
	}
	return n, nil
}

// bothSidesOrder is the order in which a change of a job's state runs
// its legacy and HLC statements, in one transaction: legacy, HLC, and the
// legacy one again. A reconciliation in another process (backfill copies
// a legacy row to the HLC side, the rollback drain an HLC row to the
// legacy side, each under the source row's lock) may commit the copy while
// the change waits for that lock; a statement that ran before the copy
// committed cannot see it. Legacy first waits for a backfill's lock and
// then sees its copy from the HLC statement; the HLC statement waits for
// a drain's lock, and the legacy statement after it sees its copy. (In
// one process, queue.Queue's reconcileMu keeps them apart already.) The
// repeat matches nothing when the first legacy statement did its work
// (a change moves the job off the status it is fenced on), except for a
// lease extension, which it writes again with the same values.
func bothSidesOrder(legacySQL, hlcSQL string) []string {
	return []string{legacySQL, hlcSQL, legacySQL}
}

// TransitionJob implements driver.Driver.
func (db *DB) TransitionJob(ctx context.Context, t driver.Transition) error {
	errs, err := db.TransitionJobs(ctx, []driver.Transition{t})
	if err != nil {
		return err
	}
	return errs[0]
}

// transitionsSet applies the transitions of unnest $1..$8 to a side. It
// keeps lease_token: the token a job's last lease ended under is how a
// client retrying its completion learns that its first try went through
// (status 'running' is the fence, not the token's presence).
// A transition with an error text ends a failed attempt: it is appended
// to the attempt history as well. Each transition's tenant ($8, empty for
// any) is a fence too; $9 is the batch's tenants, NULL when one is empty:
// the same test said once for the whole batch, as a condition on the
// table, which is what keeps the statement to those tenants' rows (one
// node of a distributed PostgreSQL for a batch of one tenant,
// distribution_test.go).
const transitionsSet = ` SET status = u.status, run_at = COALESCE(u.run_at, %[1]s.run_at),
	last_error = COALESCE(NULLIF(u.err, ''), %[1]s.last_error), attempts = GREATEST(%[1]s.attempts - u.undo, 0),
	attempt_errors = CASE WHEN u.err = '' THEN %[1]s.attempt_errors ELSE %[3]s END,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = u.now
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::integer[], $7::timestamptz[], $8::text[])
	AS u(id, token, status, run_at, err, undo, now, tenant)
WHERE %[1]s.%[2]s = u.id AND %[1]s.lease_token = u.token AND %[1]s.status = 'running'
  AND (u.tenant = '' OR %[1]s.tenant_id = u.tenant) AND ($9::text[] IS NULL OR %[1]s.tenant_id = ANY($9))
RETURNING %[1]s.%[2]s`

var (
	transitionsLegacySQL = `UPDATE scheduler.jobs j` + fmt.Sprintf(transitionsSet, "j", "id", attemptErrorsAfter("j", "u.now", "u.err"))
	transitionsHLCSQL    = `UPDATE scheduler.job_state s` + fmt.Sprintf(transitionsSet, "s", "job_id", attemptErrorsAfter("s", "u.now", "u.err"))
)

// TransitionJobTx implements driver.Driver.
func (db *DB) TransitionJobTx(ctx context.Context, tx any, t driver.Transition) error {
	ptx, ok := tx.(pgx.Tx)
	if !ok || ptx == nil {
		return fmt.Errorf("postgres: TransitionJobTx needs a pgx.Tx, got %T", tx)
	}
	status, runAt := transitionStatus(t)
	var undo int32
	if t.UndoAttempt {
		undo = 1
	}
	args := []any{[]uuid.UUID{t.JobID}, []uuid.UUID{t.Token}, []string{status}, []*time.Time{runAt}, []string{t.Error}, []int32{undo}, []time.Time{t.Now},
		[]string{t.TenantID}, batchTenants([]driver.Transition{t})}
	done := 0
	for _, q := range bothSidesOrder(transitionsLegacySQL, transitionsHLCSQL) {
		rows, err := ptx.Query(ctx, q, args...)
		if err != nil {
			return wrap("finishing job "+t.JobID.String(), err)
		}
		for rows.Next() {
			done++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap("finishing job "+t.JobID.String(), err)
		}
	}
	if done == 0 {
		return driver.ErrLeaseLost
	}
	return nil
}

// batchTenants is the tenants of a batch of transitions ($9 of
// transitionsSet), sorted and once each, or nil (any tenant) when one of
// them names none.
func batchTenants(ts []driver.Transition) []string {
	out := make([]string, 0, 1)
	for _, t := range ts {
		if t.TenantID == "" {
			return nil
		}
		out = append(out, t.TenantID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// transitionStatus is the status and run_at a transition stores: a retry
// or snooze is pending when its run_at has come, else scheduled.
func transitionStatus(t driver.Transition) (string, *time.Time) {
	if t.Status != driver.StatusPending && t.Status != driver.StatusScheduled {
		return string(t.Status), nil
	}
	runAt := t.RunAt
	if !runAt.After(t.Now) {
		return string(driver.StatusPending), &runAt
	}
	return string(driver.StatusScheduled), &runAt
}

// TransitionJobs implements driver.Driver: one round trip for
// the whole batch, both sides updated in one implicit transaction.
func (db *DB) TransitionJobs(ctx context.Context, ts []driver.Transition) ([]error, error) {
	n := len(ts)
	ids, tokens := make([]uuid.UUID, n), make([]uuid.UUID, n)
	statuses, errs := make([]string, n), make([]string, n)
	runAts, nows := make([]*time.Time, n), make([]time.Time, n)
	undos := make([]int32, n)
	tenants := make([]string, n)
	for i, t := range ts {
		ids[i], tokens[i], errs[i], nows[i], tenants[i] = t.JobID, t.Token, t.Error, t.Now, t.TenantID
		statuses[i], runAts[i] = transitionStatus(t)
		if t.UndoAttempt {
			undos[i] = 1
		}
	}
	inTenants := batchTenants(ts)
	done := make(map[uuid.UUID]bool, n)
	collect := addIDs(done)
	var err error
	for range maxRetries {
		clear(done)
		batch := &pgx.Batch{}
		for _, q := range bothSidesOrder(transitionsLegacySQL, transitionsHLCSQL) {
			batch.Queue(q, ids, tokens, statuses, runAts, errs, undos, nows, tenants, inTenants).Query(collect)
		}
		if err = db.Pool.SendBatch(ctx, batch).Close(); !retryable(err) {
			break
		}
	}
	if err != nil {
		return nil, wrap(fmt.Sprintf("finishing %d jobs", n), err)
	}
	out := make([]error, n)
	for i, id := range ids {
		if !done[id] {
			out[i] = driver.ErrLeaseLost
		}
	}
	return out, nil
}

// The fenced lease extension of each side: $1 job id, $2 lease token, $3
// new expiry, $4 now, $5 the lease's tenant (empty for any).
const (
	extendLegacySQL = `UPDATE scheduler.jobs SET lease_expires_at = $3, updated_at = $4
		WHERE id = $1 AND lease_token = $2 AND status = 'running' AND ($5 = '' OR tenant_id = $5)`
	extendHLCSQL = `UPDATE scheduler.job_state SET lease_expires_at = $3, updated_at = $4
		WHERE job_id = $1 AND lease_token = $2 AND status = 'running' AND ($5 = '' OR tenant_id = $5)`
)

// ExtendLease implements driver.Driver.
func (db *DB) ExtendLease(ctx context.Context, p driver.ExtendParams) error {
	jobID, token, until, now := p.JobID, p.Token, p.Until, p.Now
	n, err := db.fencedUpdate(ctx, "extending lease of job "+jobID.String(),
		extendLegacySQL, extendHLCSQL,
		jobID, token, until, now, p.TenantID)
	if err != nil {
		return err
	}
	if n == 0 {
		return driver.ErrLeaseLost
	}
	return nil
}

// A chain violation ends the attempt that found it: $1 job id, $2 lease
// token, $3 status, $4 reason, $5 now, $6 the lease's tenant (empty for
// any).
const violationSet = `SET status = $3, last_error = $4, attempt_errors = %s,
	lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $5`

var (
	violationLegacySQL = `UPDATE scheduler.jobs j ` + fmt.Sprintf(violationSet, attemptErrorsAfter("j", "$5::timestamptz", "$4::text")) +
		` WHERE id = $1 AND lease_token = $2 AND status = 'running' AND ($6 = '' OR tenant_id = $6)`
	violationHLCSQL = `UPDATE scheduler.job_state s ` + fmt.Sprintf(violationSet, attemptErrorsAfter("s", "$5::timestamptz", "$4::text")) +
		` WHERE job_id = $1 AND lease_token = $2 AND status = 'running' AND ($6 = '' OR tenant_id = $6)`
)

// MarkChainViolation implements driver.Driver. The legacy table has no
// chain_violation status, so its row (if any) ends failed with the reason.
func (db *DB) MarkChainViolation(ctx context.Context, p driver.ViolationParams) error {
	jobID, token, reason, now, tenant := p.JobID, p.Token, p.Reason, p.Now, p.TenantID
	batch := &pgx.Batch{}
	batch.Queue(violationLegacySQL, jobID, token, string(driver.StatusFailed), "chain violation: "+reason, now, tenant)
	batch.Queue(violationHLCSQL, jobID, token, string(driver.StatusChainViolation), "chain violation: "+reason, now, tenant)
	batch.Queue(violationLegacySQL, jobID, token, string(driver.StatusFailed), "chain violation: "+reason, now, tenant) // see bothSidesOrder
	res := db.Pool.SendBatch(ctx, batch)
	var changed int64
	for range batch.Len() {
		tag, err := res.Exec()
		if err != nil {
			_ = res.Close()
			return wrap("marking chain violation", err)
		}
		changed += tag.RowsAffected()
	}
	if err := res.Close(); err != nil {
		return wrap("marking chain violation", err)
	}
	if changed == 0 {
		return driver.ErrLeaseLost // fenced, as TransitionJob is
	}
	return nil
}

// CancelJob implements driver.Driver.
func (db *DB) CancelJob(ctx context.Context, p driver.CancelParams) error {
	jobID, reason, now := p.JobID, p.Reason, p.Now
	const set = `SET status = 'cancelled', last_error = COALESCE(NULLIF($2, ''), last_error),
		lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $3`
	n, err := db.fencedUpdate(ctx, "cancelling job "+jobID.String(),
		`UPDATE scheduler.jobs `+set+` WHERE id = $1 AND status IN ('pending', 'scheduled', 'running') AND ($4 = '' OR tenant_id = $4)`,
		`UPDATE scheduler.job_state `+set+` WHERE job_id = $1 AND status IN ('pending', 'scheduled', 'running') AND ($4 = '' OR tenant_id = $4)`,
		jobID, reason, now, p.TenantID)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var exists bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM scheduler.jobs WHERE id = $1 AND ($2 = '' OR tenant_id = $2))
		OR EXISTS (SELECT 1 FROM scheduler.job_state WHERE job_id = $1 AND ($2 = '' OR tenant_id = $2))`, jobID, p.TenantID).Scan(&exists); err != nil {
		return wrap("cancelling job "+jobID.String(), err)
	}
	if exists {
		return driver.ErrJobFinished
	}
	return driver.ErrJobNotFound
}

// rescueError is the error an expired lease ends its attempt with.
const rescueError = `(CASE WHEN t.attempts >= t.max_attempts THEN 'lease expired on the last attempt (owner ' || COALESCE(t.lease_owner, '?') || ')'
	ELSE 'lease expired (owner ' || COALESCE(t.lease_owner, '?') || ')' END)`

// RescueExpired implements driver.Driver.
func (db *DB) RescueExpired(ctx context.Context, p driver.RescueParams) (driver.RescueResult, error) {
	now, limit := p.Now, p.Limit
	set := `SET status = CASE WHEN t.attempts >= t.max_attempts THEN 'failed' ELSE 'pending' END,
		last_error = ` + rescueError + `, attempt_errors = ` + attemptErrorsAfter("t", "$1::timestamptz", rescueError) + `,
		run_at = CASE WHEN t.attempts >= t.max_attempts THEN t.run_at ELSE $1 END,
		lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = $1`
	outcome := map[uuid.UUID]string{}
	err := db.inTx(ctx, "rescuing expired leases", func(tx pgx.Tx) error {
		clear(outcome)
		for _, sql := range []string{
			`WITH exp AS (SELECT job_id FROM scheduler.job_state WHERE status = 'running' AND lease_expires_at < $1
				ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE scheduler.job_state t ` + set + ` FROM exp WHERE t.job_id = exp.job_id RETURNING t.job_id, t.status`,
			`WITH exp AS (SELECT id FROM scheduler.jobs WHERE status = 'running' AND lease_expires_at < $1
				ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE scheduler.jobs t ` + set + ` FROM exp WHERE t.id = exp.id RETURNING t.id, t.status`,
		} {
			rows, err := tx.Query(ctx, sql, now, limit)
			if err != nil {
				return err
			}
			var id uuid.UUID
			var status string
			if _, err := pgx.ForEachRow(rows, []any{&id, &status}, func() error {
				outcome[id] = status
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	var r driver.RescueResult
	for _, s := range outcome {
		if s == string(driver.StatusFailed) {
			r.Failed++
		} else {
			r.Rescued++
		}
	}
	return r, err
}

// GetJob implements driver.Driver.
func (db *DB) GetJob(ctx context.Context, ref driver.JobRef) (driver.JobInfo, error) {
	jobID := ref.JobID
	info := driver.JobInfo{JobID: jobID}
	var legacyPayload string
	var owner, lastErr *string
	var token *uuid.UUID
	var expires *time.Time
	var digest string
	var history, metadata []byte
	err := db.Pool.QueryRow(ctx, `SELECT tenant_id, COALESCE(project_id, ''), kind, payload::text, payload_digest, priority, status,
		attempts, max_attempts, run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors::text, metadata::text
		FROM scheduler.jobs WHERE id = $1 AND ($2 = '' OR tenant_id = $2)`, jobID, ref.TenantID).Scan(&info.TenantID, &info.PartitionKey, &info.Kind, &legacyPayload, &digest,
		&info.Priority, &info.Status, &info.Attempts, &info.MaxAttempts, &info.RunAt, &info.CreatedAt, &info.UpdatedAt,
		&owner, &token, &expires, &lastErr, &history, &metadata)
	switch {
	case err == nil:
		info.InLegacy = true
		info.Payload = []byte(legacyPayload)
		info.PayloadHash, _ = chain.ParseHash(digest)
		setLease(&info, owner, token, expires, lastErr)
		if info.AttemptErrors, err = driver.DecodeAttemptErrors(history); err != nil {
			return info, wrap("reading job "+jobID.String(), err)
		}
		if info.Metadata, err = driver.DecodeMetadata(metadata); err != nil {
			return info, wrap("reading job "+jobID.String(), err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return info, wrap("reading job "+jobID.String(), err)
	}
	var status string
	err = db.Pool.QueryRow(ctx, `SELECT status, attempts, max_attempts, run_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors::text, metadata::text
		FROM scheduler.job_state WHERE job_id = $1 AND ($2 = '' OR tenant_id = $2)`, jobID, ref.TenantID).Scan(&status, &info.Attempts, &info.MaxAttempts, &info.RunAt, &info.UpdatedAt,
		&owner, &token, &expires, &lastErr, &history, &metadata)
	switch {
	case err == nil:
		info.InHLC = true
		info.Status = driver.Status(status)
		info.LeaseOwner, info.LeaseToken, info.LeaseExpiresAt, info.LastError = "", uuid.UUID{}, time.Time{}, ""
		setLease(&info, owner, token, expires, lastErr)
		if info.AttemptErrors, err = driver.DecodeAttemptErrors(history); err != nil {
			return info, wrap("reading job "+jobID.String(), err)
		}
		if info.Metadata, err = driver.DecodeMetadata(metadata); err != nil {
			return info, wrap("reading job "+jobID.String(), err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return info, wrap("reading job "+jobID.String(), err)
	}
	entries, err := readChainEntries(ctx, db.Pool, []uuid.UUID{jobID}, ref.TenantID)
	if err != nil {
		return info, wrap("reading job "+jobID.String(), err)
	}
	return info, info.CompleteFromLog(entries[jobID])
}

func setLease(info *driver.JobInfo, owner *string, token *uuid.UUID, expires *time.Time, lastErr *string) {
	if owner != nil {
		info.LeaseOwner = *owner
	}
	if token != nil {
		info.LeaseToken = *token
	}
	if expires != nil {
		info.LeaseExpiresAt = *expires
	}
	if lastErr != nil {
		info.LastError = *lastErr
	}
}

// LegacyOnly implements driver.Driver.
func (db *DB) LegacyOnly(ctx context.Context, tenantID string, limit int) ([]driver.JobInfo, error) {
	rows, err := db.Pool.Query(ctx, `SELECT id, tenant_id, COALESCE(project_id, ''), kind, payload::text, priority, status, attempts,
		max_attempts, run_at, created_at, lease_owner, lease_token, lease_expires_at, last_error
		FROM scheduler.jobs j
		WHERE status IN ('pending', 'scheduled', 'running') AND ($1 = '' OR tenant_id = $1)
		  AND NOT EXISTS (SELECT 1 FROM scheduler.job_state s WHERE s.job_id = j.id)
		ORDER BY created_at, id LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, wrap("listing legacy-only jobs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (driver.JobInfo, error) {
		var info driver.JobInfo
		var payload string
		var owner, lastErr *string
		var token *uuid.UUID
		var expires *time.Time
		if err := r.Scan(&info.JobID, &info.TenantID, &info.PartitionKey, &info.Kind, &payload, &info.Priority, &info.Status,
			&info.Attempts, &info.MaxAttempts, &info.RunAt, &info.CreatedAt, &owner, &token, &expires, &lastErr); err != nil {
			return info, err
		}
		info.Payload, info.InLegacy = []byte(payload), true
		setLease(&info, owner, token, expires, lastErr)
		return info, nil
	})
	return out, wrap("listing legacy-only jobs", err)
}

// DrainToLegacy implements driver.Driver. The HLC state rows are locked
// while they are copied, so a concurrent dequeue either sees the new
// legacy row (and leases both) or has already leased the job (and the
// copy carries its lease).
func (db *DB) DrainToLegacy(ctx context.Context, limit int, now time.Time) (int, error) {
	tag, err := db.Pool.Exec(ctx, `
		WITH src AS (
			SELECT s.* FROM scheduler.job_state s
			WHERE s.status IN ('pending', 'scheduled', 'running')
			  AND NOT EXISTS (SELECT 1 FROM scheduler.jobs j WHERE j.id = s.job_id)
			ORDER BY s.t_hlc LIMIT $1
			FOR UPDATE OF s SKIP LOCKED
		)
		INSERT INTO scheduler.jobs (id, tenant_id, project_id, kind, payload, payload_digest, priority, status, attempts,
			max_attempts, run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata)
		SELECT src.job_id, src.tenant_id, NULLIF(src.partition_key, ''), src.kind, l.payload::jsonb, encode(l.payload_hash, 'hex'),
			l.priority, src.status, src.attempts, src.max_attempts, src.run_at, l.created_at, $2,
			src.lease_owner, src.lease_token, src.lease_expires_at, src.last_error, src.attempt_errors, src.metadata
		FROM src JOIN scheduler.scheduler_log l
		  ON l.tenant_id = src.tenant_id AND l.t_hlc = src.t_hlc AND l.partition_key = src.partition_key AND l.job_id = src.job_id
		ON CONFLICT (id, tenant_id) DO NOTHING`, limit, now)
	if err != nil {
		return 0, wrap("draining HLC-only jobs to the legacy table", err)
	}
	return int(tag.RowsAffected()), nil
}

// TryLead implements driver.Leadership.
func (db *DB) TryLead(ctx context.Context, p driver.LeadParams) (bool, error) {
	name, holder, until, now := p.Name, p.Holder, p.Until, p.Now
	var got string
	err := db.Pool.QueryRow(ctx, `
		INSERT INTO scheduler.leadership (name, holder, expires_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
		WHERE scheduler.leadership.holder = EXCLUDED.holder OR scheduler.leadership.expires_at < $4
		RETURNING holder`, name, holder, until, now).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("electing leader of "+name, err)
	}
	return got == holder, nil
}

// Resign implements driver.Leadership.
func (db *DB) Resign(ctx context.Context, name, holder string) error {
	_, err := db.Pool.Exec(ctx, `DELETE FROM scheduler.leadership WHERE name = $1 AND holder = $2`, name, holder)
	return wrap("resigning leadership of "+name, err)
}

// leaseTokenSQL is driver.LeaseToken(batch $6, the job id in column) in
// SQL: the first 16 bytes of SHA-256 of the two UUIDs' bytes.
func leaseTokenSQL(column string) string {
	return `substr(encode(sha256(uuid_send($6::uuid) || uuid_send(` + column + `)), 'hex'), 1, 32)::uuid`
}
