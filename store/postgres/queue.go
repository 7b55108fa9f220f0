package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

var _ driver.Driver = (*DB)(nil)

// copyThreshold is the batch size from which rows go in with COPY (one
// round trip per table); below it INSERTs over unnest() travel in the
// same round trip as the head update and the COMMIT.
const copyThreshold = 256

// maxRetries bounds retries of a transaction that lost a deadlock or a
// unique-key race (possible only while nodes run in different modes).
const maxRetries = 5

// inTx runs fn in a transaction, retrying on deadlock and unique-key races.
func (db *DB) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	var err error
	for range maxRetries {
		err = pgx.BeginFunc(ctx, db.Pool, fn)
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return wrap(what, err)
	}
	return nil
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "23505" || pgErr.Code == "40001")
}

// wrap names the operation, leaving sentinel and drift errors matchable.
func wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, puddle.ErrClosedPool), errors.Is(err, pgx.ErrTxClosed):
		// As on every backend: a closed database is driver.ErrClosed.
		return fmt.Errorf("postgres: %s: %w (%w)", what, driver.ErrClosed, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// The caller's deadline or cancellation, not the server: kept as it is.
	case unreachable(err):
		return fmt.Errorf("postgres: %s: %w (%w)", what, driver.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// unreachable reports whether err says the server could not be reached
// or is going away or coming up, rather than that the statement failed:
// a connection that could not be opened or broke, SQLSTATE class 08
// (connection exception), 57P01 admin_shutdown, 57P02 crash_shutdown and
// 57P03 cannot_connect_now.
func unreachable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// chainLockKey is the advisory lock key of a chain. Hash collisions only
// make two chains share a lock, which costs some parallelism, never order.
func chainLockKey(k chain.Key) int64 {
	h := fnv.New64a()
	h.Write([]byte(k.TenantID))
	h.Write([]byte{0})
	h.Write([]byte(k.PartitionKey))
	return int64(h.Sum64())
}

// Enqueue implements driver.Driver. Its transaction takes two round
// trips when the batch is small enough for INSERTs (which is where group
// commit puts concurrent Enqueue calls): BEGIN travels with the head locks
// and reads, COMMIT with the writes.
func (db *DB) Enqueue(ctx context.Context, b *driver.EnqueueBatch) ([]driver.EnqueueResult, error) {
	var res []driver.EnqueueResult
	var err error
	for range maxRetries {
		if res, err = db.enqueueOwnTx(ctx, b); !retryable(err) {
			break
		}
	}
	return res, wrap("enqueue", err)
}

func (db *DB) enqueueOwnTx(ctx context.Context, b *driver.EnqueueBatch) ([]driver.EnqueueResult, error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release() // a connection left inside a transaction is closed, not reused
	res, err := enqueue(ctx, conn, db.heads, b, false, true)
	if err == nil {
		db.noteWritten(written(res))
	}
	if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = conn.Exec(rctx, "ROLLBACK")
		cancel()
	}
	return res, err
}

// querier is what enqueue needs of a connection or a transaction.
type querier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Conn() *pgx.Conn
}

// EnqueueTx implements driver.Driver: tx must be a pgx.Tx, and the batch
// is written inside it, so a job is enqueued if and only if the caller's
// own writes commit.
func (db *DB) EnqueueTx(ctx context.Context, tx any, b *driver.EnqueueBatch) ([]driver.EnqueueResult, error) {
	t, ok := tx.(pgx.Tx)
	if !ok || t == nil {
		return nil, fmt.Errorf("postgres: EnqueueTx needs a pgx.Tx, got %T", tx)
	}
	res, err := enqueue(ctx, t, db.heads, b, false, false)
	if err == nil {
		db.noteWritten(written(res)) // the caller's commit is likely; a refresh too many is harmless
	}
	return res, wrap("enqueue", err)
}

// written counts the jobs of a batch that were written, not deduplicated.
func written(res []driver.EnqueueResult) int {
	n := 0
	for _, r := range res {
		if !r.Deduplicated {
			n++
		}
	}
	return n
}

// Backfill implements driver.Driver.
func (db *DB) Backfill(ctx context.Context, b *driver.EnqueueBatch) (int, error) {
	n := 0
	err := db.inTx(ctx, "backfill", func(tx pgx.Tx) error {
		res, err := enqueue(ctx, tx, db.heads, b, true, false)
		n = 0
		for _, r := range res {
			if !r.Deduplicated {
				n++
			}
		}
		return err
	})
	return n, err
}

// The statements of an enqueue (distribution_test.go names them).
const (
	// chainLocksSQL takes the advisory lock of each chain of the batch, $1
	// the keys (chainLockKey), in key order.
	chainLocksSQL = `SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) AS keys`
	// existingSQL: which of the job ids $1 the log, the legacy table or
	// the ids of dropped entries (archived_jobs) have, $2 the batch's
	// tenants. A job id names its tenant (chain.JobID),
	// so the tenant test finds no fewer jobs; it is there so that a batch
	// of one tenant is a statement about that tenant alone, as a
	// distributed PostgreSQL routes it (docs/scaling.md).
	existingSQL = `SELECT job_id FROM scheduler.scheduler_log WHERE job_id = ANY($1) AND tenant_id = ANY($2)
			UNION ALL SELECT id FROM scheduler.jobs WHERE id = ANY($1) AND tenant_id = ANY($2)
			UNION ALL SELECT job_id FROM scheduler.archived_jobs WHERE job_id = ANY($1) AND tenant_id = ANY($2)`
	// predecessorsSQL: the last log entry of each chain (tenant $1[i],
	// partition $2[i]), with the position the next entry takes; $3 the
	// batch's tenants, for the same reason as in existingSQL (the planner
	// cannot see through unnest which tenants $1 holds).
	predecessorsSQL = `SELECT k.t, k.p, l.link, l.t_hlc, l.chain_pos + 1
			FROM unnest($1::text[], $2::text[]) AS k(t, p)
			CROSS JOIN LATERAL (SELECT link, t_hlc, chain_pos FROM scheduler.scheduler_log
				WHERE tenant_id = k.t AND partition_key = k.p AND tenant_id = ANY($3) ORDER BY chain_pos DESC LIMIT 1) l`
	// backfillLoggedSQL: which of the job ids $1 the log has (backfill).
	backfillLoggedSQL = `SELECT job_id FROM scheduler.scheduler_log WHERE job_id = ANY($1)
			UNION ALL SELECT job_id FROM scheduler.archived_jobs WHERE job_id = ANY($1)`
	// backfillLegacySQL locks the legacy rows of the job ids $1 and reads
	// their state (backfill).
	backfillLegacySQL = `SELECT id, status, attempts, COALESCE(lease_owner, ''), lease_token, lease_expires_at, COALESCE(last_error, ''),
			attempt_errors::text, metadata::text
			FROM scheduler.jobs WHERE id = ANY($1) FOR UPDATE`
)

// enqueue is the body of Enqueue, EnqueueTx and Backfill. Chain heads are
// locked with transaction-scoped advisory locks keyed by chain, taken in
// key order, so batches that span chains cannot deadlock and a chain's
// genesis needs no special case; the dedup check runs after the locks,
// when no other ordo writer can be adding the same job (a job id names
// its tenant and partition, so it can only ever join one chain). With
// ownTx, tx is a bare connection: enqueue sends BEGIN with its first
// statements and COMMIT with its writes.
func enqueue(ctx context.Context, tx querier, hc *headCache, b *driver.EnqueueBatch, backfill, ownTx bool) ([]driver.EnqueueResult, error) {
	ids := make([]uuid.UUID, len(b.Jobs))
	for i, j := range b.Jobs {
		ids[i] = j.JobID
	}
	keys, groups := driver.GroupByChain(b.Jobs)
	var batchTenants []string // each tenant of the batch once
	seenTenant := map[string]bool{}
	for _, j := range b.Jobs {
		if !seenTenant[j.TenantID] {
			seenTenant[j.TenantID] = true
			batchTenants = append(batchTenants, j.TenantID)
		}
	}
	batch := &pgx.Batch{}
	if ownTx {
		batch.Queue("BEGIN")
	}
	if b.HLC {
		lockKeys := make([]int64, len(keys))
		for i, k := range keys {
			lockKeys[i] = chainLockKey(k)
		}
		slices.Sort(lockKeys)
		lockKeys = slices.Compact(lockKeys)
		batch.Queue(chainLocksSQL, lockKeys).
			QueryRow(func(pgx.Row) error { return nil })
	}
	existing := map[uuid.UUID]bool{}
	scanIDs := addIDs(existing)
	if backfill {
		batch.Queue(backfillLoggedSQL, ids).Query(scanIDs)
		// Lock the legacy rows and take their state as of now: a dequeue
		// that leased one since it was listed must not be undone, and one
		// that finished meanwhile needs no chain entry.
		byID := make(map[uuid.UUID]*driver.Prepared, len(b.Jobs))
		for _, j := range b.Jobs {
			byID[j.JobID] = j
		}
		batch.Queue(backfillLegacySQL, ids).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				var status string
				var token *uuid.UUID
				var expires *time.Time
				var owner, lastErr string
				var history, metadata []byte
				var attempts int
				if err := rows.Scan(&id, &status, &attempts, &owner, &token, &expires, &lastErr, &history, &metadata); err != nil {
					return err
				}
				p := byID[id]
				p.Status, p.Attempts, p.LeaseOwner, p.LastError = driver.Status(status), attempts, owner, lastErr
				p.AttemptErrors, p.Metadata = history, metadata
				p.LeaseToken, p.LeaseExpiresAt = uuid.UUID{}, time.Time{}
				if token != nil {
					p.LeaseToken = *token
				}
				if expires != nil {
					p.LeaseExpiresAt = *expires
				}
				if p.Status.Finished() {
					existing[id] = true
				}
			}
			return rows.Err()
		})
	} else {
		// A job exists if the log or the legacy table has it. The log, not
		// job_state: every HLC state row is written with its log entry, and a
		// job whose state retention pruned is still in the chain, where
		// appending it again would repeat its id. (A state row whose entry
		// was deleted by hand makes the insert fail on job_state's key.)
		batch.Queue(existingSQL, ids, batchTenants).Query(scanIDs)
	}
	heads := map[chain.Key]driver.Head{}
	if b.HLC {
		tenants, partitions := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			tenants[i], partitions[i] = k.TenantID, k.PartitionKey
		}
		// The predecessor is the chain's last log entry, not chain_heads
		// (see HeadRefreshInterval): read under the advisory lock, in a
		// statement whose snapshot follows it, so it is the last committed.
		batch.Queue(predecessorsSQL, tenants, partitions, batchTenants).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var k chain.Key
				var link []byte
				var t string
				var n int64
				if err := rows.Scan(&k.TenantID, &k.PartitionKey, &link, &t, &n); err != nil {
					return err
				}
				h, err := scanHead(link, t, n)
				if err != nil {
					return fmt.Errorf("chain %s/%q: %w", k.TenantID, k.PartitionKey, err)
				}
				heads[k] = h
			}
			return rows.Err()
		})
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}

	// Which jobs to write: not stored yet, first occurrence in the batch.
	fresh := make(map[uuid.UUID]bool, len(b.Jobs))
	var newJobs []*driver.Prepared
	for _, j := range b.Jobs {
		if existing[j.JobID] || fresh[j.JobID] {
			continue
		}
		fresh[j.JobID] = true
		newJobs = append(newJobs, j)
	}

	written := make(map[uuid.UUID]driver.AppendEntry, len(newJobs))
	var entries []driver.AppendEntry
	var newHeads []driver.Head
	var headKeys []chain.Key
	if b.HLC {
		for _, k := range keys {
			var todo []*driver.Prepared
			for _, j := range groups[k] {
				if fresh[j.JobID] {
					todo = append(todo, j)
				}
			}
			if len(todo) == 0 {
				continue
			}
			es, head, err := b.Append(heads[k], todo)
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				written[e.Job.JobID] = e
			}
			entries = append(entries, es...)
			newHeads = append(newHeads, head)
			headKeys = append(headKeys, k)
		}
	}

	if err := writeRows(ctx, tx, hc, b, newJobs, entries, headKeys, newHeads, backfill, ownTx); err != nil {
		return nil, err
	}

	res := make([]driver.EnqueueResult, len(b.Jobs))
	var dups []uuid.UUID
	for i, j := range b.Jobs {
		res[i].JobID = j.JobID
		if e, ok := written[j.JobID]; ok && fresh[j.JobID] {
			res[i].THLC, res[i].Link = e.THLCText, e.Link
			delete(fresh, j.JobID) // a repeat later in the batch is a duplicate
			continue
		}
		if fresh[j.JobID] { // legacy-only write
			delete(fresh, j.JobID)
			continue
		}
		res[i].Deduplicated = true
		dups = append(dups, j.JobID)
	}
	if len(dups) > 0 {
		known := map[uuid.UUID]driver.EnqueueResult{}
		rows, err := tx.Query(ctx, `SELECT job_id, t_hlc, link, payload_hash FROM scheduler.scheduler_log WHERE job_id = ANY($1)
			UNION ALL SELECT job_id, t_hlc, link, payload_hash FROM scheduler.archived_jobs WHERE job_id = ANY($1)`, dups)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var r driver.EnqueueResult
			var link, hash []byte
			if err := rows.Scan(&r.JobID, &r.THLC, &link, &hash); err != nil {
				rows.Close()
				return nil, err
			}
			r.Link, _ = chain.HashFromBytes(link)
			r.PayloadHash, _ = chain.HashFromBytes(hash)
			known[r.JobID] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i := range res {
			if r, ok := known[res[i].JobID]; ok && res[i].Deduplicated {
				res[i].THLC, res[i].Link, res[i].PayloadHash = r.THLC, r.Link, r.PayloadHash
			}
		}
		// Written earlier in this very batch: take it from the entries.
		for i := range res {
			if e, ok := written[res[i].JobID]; ok && res[i].Deduplicated {
				res[i].THLC, res[i].Link, res[i].PayloadHash = e.THLCText, e.Link, e.Job.PayloadHash
			}
		}
	}
	return res, nil
}

func nullable(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullableUUID(id uuid.UUID) *uuid.UUID {
	if id == (uuid.UUID{}) {
		return nil
	}
	return &id
}

// writeRows inserts the log entries, HLC state rows and legacy rows of a
// batch and moves the chain heads: with COPY for large batches, otherwise
// with INSERTs over unnest() pipelined in one round trip, ending with
// COMMIT when commit is set.
func writeRows(ctx context.Context, tx querier, hc *headCache, b *driver.EnqueueBatch, newJobs []*driver.Prepared, entries []driver.AppendEntry,
	headKeys []chain.Key, heads []driver.Head, backfill, commit bool) error {
	logRows := make([][]any, len(entries))
	stateRows := make([][]any, len(entries))
	for i, e := range entries {
		j := e.Job
		var prev []byte
		if e.Pos > 0 {
			prev = e.PrevLink[:]
		}
		var idem *string
		if j.IdempotencyKey != "" {
			idem = &j.IdempotencyKey
		}
		var srcNode, srcTHLC *string
		var srcPrev, srcLink []byte
		node := b.Node
		if src := j.Source; src != nil {
			srcNode, srcTHLC, srcLink = &src.Node, &src.THLC, src.Link[:]
			if !src.PrevNull {
				srcPrev = src.PrevLink[:]
			}
			node = src.Node // the node its t_hlc names, whichever node imports it
		}
		logRows[i] = []any{j.TenantID, e.THLCText, j.PartitionKey, j.JobID, j.PayloadHash[:], prev, e.Link[:],
			j.CreatedAt, e.Pos, node, j.Kind, string(j.Payload), j.Priority, j.MaxAttempts, j.RunAt, idem,
			srcNode, srcTHLC, srcPrev, srcLink}
		status := j.Status
		var owner *string
		var token *uuid.UUID
		var expires *time.Time
		var lastErr, history *string
		if backfill {
			if j.AttemptErrors != nil {
				h := string(j.AttemptErrors)
				history = &h
			}
			if j.LeaseOwner != "" {
				owner = &j.LeaseOwner
			}
			token, expires = nullableUUID(j.LeaseToken), nullable(j.LeaseExpiresAt)
			if j.LastError != "" {
				lastErr = &j.LastError
			}
		}
		stateRows[i] = []any{j.JobID, j.TenantID, j.PartitionKey, e.THLCText, j.Kind, string(status), j.Attempts, j.MaxAttempts,
			j.RunAt, b.Now, owner, token, expires, lastErr, history, nullJSON(j.Metadata)}
	}
	var legacyRows [][]any
	if b.Legacy && !backfill {
		legacyRows = make([][]any, len(newJobs))
		for i, j := range newJobs {
			var project *string
			if j.PartitionKey != "" {
				project = &j.PartitionKey
			}
			legacyRows[i] = []any{j.JobID, j.TenantID, project, j.Kind, string(j.Payload), j.PayloadHash.String(), j.Priority,
				string(j.Status), 0, j.MaxAttempts, j.RunAt, j.CreatedAt, b.Now, nullJSON(j.Metadata)}
		}
	}
	logCols := []string{"tenant_id", "t_hlc", "partition_key", "job_id", "payload_hash", "prev_link", "link",
		"created_at", "chain_pos", "node_id", "kind", "payload", "priority", "max_attempts", "run_at", "idempotency_key",
		"source_node", "source_t_hlc", "source_prev_link", "source_link"}
	stateCols := []string{"job_id", "tenant_id", "partition_key", "t_hlc", "kind", "status", "attempts", "max_attempts",
		"run_at", "updated_at", "lease_owner", "lease_token", "lease_expires_at", "last_error", "attempt_errors", "metadata"}
	legacyCols := []string{"id", "tenant_id", "project_id", "kind", "payload", "payload_digest", "priority",
		"status", "attempts", "max_attempts", "run_at", "created_at", "updated_at", "metadata"}

	batch := &pgx.Batch{}
	for _, w := range []struct {
		table string
		cols  []string
		types []string
		rows  [][]any
	}{
		{"scheduler_log", logCols, []string{"text", "text", "text", "uuid", "bytea", "bytea", "bytea", "timestamptz", "bigint",
			"text", "text", "text", "integer", "integer", "timestamptz", "text", "text", "text", "bytea", "bytea"}, logRows},
		{"job_state", stateCols, []string{"uuid", "text", "text", "text", "text", "text", "integer", "integer", "timestamptz",
			"timestamptz", "text", "uuid", "timestamptz", "text", "jsonb", "jsonb"}, stateRows},
		{"jobs", legacyCols, []string{"uuid", "text", "text", "text", "jsonb", "text", "integer", "text", "integer", "integer",
			"timestamptz", "timestamptz", "timestamptz", "jsonb"}, legacyRows},
	} {
		if len(w.rows) == 0 {
			continue
		}
		if len(w.rows) >= copyThreshold {
			if err := copyRows(ctx, tx, "scheduler."+w.table, w.cols, w.types, w.rows); err != nil {
				return fmt.Errorf("writing %s: %w", w.table, err)
			}
			continue
		}
		sql, args := unnestInsert("scheduler."+w.table, w.cols, w.types, w.rows)
		batch.Queue(sql, args...)
	}
	// In the caller's transaction (or a backfill's) the heads are written
	// with it: whether it commits is not known here.
	var now, later []int
	if commit && hc != nil {
		now, later = hc.split(headKeys, heads)
	} else {
		now = make([]int, len(heads))
		for i := range heads {
			now[i] = i
		}
	}
	if len(now) > 0 {
		ks, hs := make([]chain.Key, len(now)), make([]driver.Head, len(now))
		for n, i := range now {
			ks[n], hs[n] = headKeys[i], heads[i]
		}
		sql, args := headUpsert(ks, hs, b.Now, false)
		batch.Queue(sql, args...)
	}
	if len(newJobs) > 0 || len(entries) > 0 {
		// Delivered at commit, so listeners never wake for a rolled-back job.
		batch.Queue(`SELECT pg_notify('` + NotifyChannel + `', '')`)
	}
	if commit {
		batch.Queue("COMMIT")
	}
	if batch.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return err
	}
	if commit && hc != nil {
		hc.committed(headKeys, heads, now, later)
	}
	return nil
}

// nullJSON is stored JSON text for a jsonb column, nil (NULL) for none.
func nullJSON(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// headUpsert writes chain_heads rows. A row never moves back to an older
// entry: a deferred write may reach the database after a newer one (from
// this process's next batch or another node). With deferred, a row also
// never names an entry the log no longer has (removed since it was
// appended, which only tampering does): the cache must not hide that.
func headUpsert(keys []chain.Key, heads []driver.Head, at time.Time, deferred bool) (string, []any) {
	logHas := ""
	if deferred {
		logHas = `
		WHERE EXISTS (SELECT 1 FROM scheduler.scheduler_log l
			WHERE l.tenant_id = u.t AND l.partition_key = u.p AND l.chain_pos = u.c - 1 AND l.link = u.l)`
	}
	tenants, partitions := make([]string, len(heads)), make([]string, len(heads))
	links, thlcs, counts := make([][]byte, len(heads)), make([]string, len(heads)), make([]int64, len(heads))
	for i, h := range heads {
		tenants[i], partitions[i] = keys[i].TenantID, keys[i].PartitionKey
		links[i], thlcs[i], counts[i] = h.Link[:], h.THLC.String(), h.Count
	}
	return `INSERT INTO scheduler.chain_heads (tenant_id, partition_key, last_link, last_t_hlc, entry_count, updated_at)
		SELECT t, p, l, h, c, $6 FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[]) AS u(t, p, l, h, c)` + logHas + `
		ON CONFLICT (tenant_id, partition_key) DO UPDATE
		SET last_link = EXCLUDED.last_link, last_t_hlc = EXCLUDED.last_t_hlc, entry_count = EXCLUDED.entry_count, updated_at = EXCLUDED.updated_at
		WHERE scheduler.chain_heads.entry_count < EXCLUDED.entry_count`,
		[]any{tenants, partitions, links, thlcs, counts, at}
}

// writeHeads is the head cache's deferred write.
func (db *DB) writeHeads(ctx context.Context, keys []chain.Key, heads []driver.Head, at time.Time) error {
	sql, args := headUpsert(keys, heads, at, true)
	_, err := db.Pool.Exec(ctx, sql, args...)
	return wrap("writing chain heads", err)
}

// unnestInsert builds INSERT INTO table (cols) SELECT * FROM unnest(arrays),
// one array parameter per column, from row-major values.
func unnestInsert(table string, cols, types []string, rows [][]any) (string, []any) {
	args := make([]any, len(cols))
	sql := "INSERT INTO " + table + " ("
	sel := ") SELECT * FROM unnest("
	for c := range cols {
		if c > 0 {
			sql += ", "
			sel += ", "
		}
		sql += cols[c]
		sel += fmt.Sprintf("$%d::%s[]", c+1, types[c])
		col := make([]any, len(rows))
		for r := range rows {
			col[r] = rows[r][c]
		}
		args[c] = col
	}
	return sql + sel + ")", args
}

// scanHead reads a chain_heads row into a driver.Head.
func scanHead(link []byte, tHLC string, count int64) (driver.Head, error) {
	h, err := chain.HashFromBytes(link)
	if err != nil {
		return driver.Head{}, fmt.Errorf("chain head: %w", err)
	}
	t, err := hlc.Parse(tHLC)
	if err != nil {
		return driver.Head{}, fmt.Errorf("chain head: %w", err)
	}
	return driver.Head{Exists: true, Link: h, THLC: t, Count: count}, nil
}

// addIDs is the callback of a batched query whose one column is a job id:
// it adds each row's id to set.
func addIDs(set map[uuid.UUID]bool) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			set[id] = true
		}
		return rows.Err()
	}
}
