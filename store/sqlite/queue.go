package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

var _ driver.Driver = (*DB)(nil)

// Enqueue implements driver.Driver. SQLite has one writer at a time and
// the transaction starts with BEGIN IMMEDIATE, so the chain heads read
// here cannot move before the commit: no further locking is needed.
func (db *DB) Enqueue(ctx context.Context, b *driver.EnqueueBatch) ([]driver.EnqueueResult, error) {
	var res []driver.EnqueueResult
	err := db.inTx(ctx, "enqueue", func(t *txn) error {
		var err error
		res, _, err = t.enqueue(b, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// EnqueueTx implements driver.Driver: tx must be a *sql.Tx of db.SQL, and
// the jobs exist if and only if the caller commits. The DB has a single
// connection, which tx holds until it ends, so the caller must not use the
// DB (or a Queue on it) otherwise meanwhile.
func (db *DB) EnqueueTx(ctx context.Context, tx any, b *driver.EnqueueBatch) ([]driver.EnqueueResult, error) {
	sqlTx, ok := tx.(*sql.Tx)
	if !ok || sqlTx == nil {
		return nil, fmt.Errorf("sqlite: EnqueueTx needs a *sql.Tx, got %T", tx)
	}
	if err := db.closedErr("enqueue"); err != nil {
		return nil, err
	}
	t := &txn{ctx: ctx, db: db, tx: sqlTx}
	res, _, err := t.enqueue(b, false)
	if err != nil {
		return nil, wrapErr("enqueue", err)
	}
	return res, nil
}

// Backfill implements driver.Driver.
func (db *DB) Backfill(ctx context.Context, b *driver.EnqueueBatch) (int, error) {
	n := 0
	err := db.inTx(ctx, "backfill", func(t *txn) error {
		var err error
		_, n, err = t.enqueue(b, true)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

const (
	// A job exists if the log, the legacy table or the ids of dropped
	// entries (archived_jobs) have it. The log, not
	// job_state: every HLC state row is written with its log entry, and a
	// job whose state retention pruned is still in the chain, where
	// appending it again would repeat its id.
	existingSQL = `
		SELECT job_id FROM scheduler_log WHERE job_id IN (SELECT value FROM json_each(?1))
		UNION ALL
		SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?1))
		UNION ALL
		SELECT job_id FROM archived_jobs WHERE job_id IN (SELECT value FROM json_each(?1))`
	existingStateSQL = `SELECT job_id FROM scheduler_log WHERE job_id IN (SELECT value FROM json_each(?1))
		UNION ALL SELECT job_id FROM archived_jobs WHERE job_id IN (SELECT value FROM json_each(?1))`
	// The legacy row's state as of now, for a backfill: a dequeue may have
	// leased the job, or it may have finished, since LegacyOnly listed it.
	legacyStateSQL = `
		SELECT id, status, attempts, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata
		FROM jobs WHERE id IN (SELECT value FROM json_each(?1))`
	headSQL      = `SELECT last_link, last_t_hlc, entry_count FROM chain_heads WHERE tenant_id = ?1 AND partition_key = ?2`
	insertLogSQL = `
		INSERT INTO scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, created_at,
			chain_pos, node_id, kind, payload, priority, max_attempts, run_at, idempotency_key,
			source_node, source_t_hlc, source_prev_link, source_link)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)`
	insertStateSQL = `
		INSERT INTO job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, attempts, max_attempts, run_at,
			updated_at, lease_owner, lease_token, lease_expires_at, last_error, attempt_errors, metadata)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)`
	insertLegacySQL = `
		INSERT INTO jobs (id, tenant_id, project_id, kind, payload, payload_digest, priority, status, attempts,
			max_attempts, run_at, created_at, updated_at, metadata)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?12, ?13)`
	upsertHeadSQL = `
		INSERT INTO chain_heads (tenant_id, partition_key, last_link, last_t_hlc, entry_count, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (tenant_id, partition_key) DO UPDATE
		SET last_link = excluded.last_link, last_t_hlc = excluded.last_t_hlc,
			entry_count = excluded.entry_count, updated_at = excluded.updated_at`
	// The stored entry of a job: the one its HLC state names, if any.
	storedLinkSQL = `
		SELECT job_id, t_hlc, link, payload_hash FROM (
			SELECT l.job_id, l.t_hlc, l.link, l.payload_hash, l.seq_bigint AS o FROM scheduler_log l
			LEFT JOIN job_state s ON s.job_id = l.job_id
			WHERE l.job_id IN (SELECT value FROM json_each(?1)) AND (s.t_hlc IS NULL OR s.t_hlc = l.t_hlc)
			UNION ALL
			SELECT job_id, t_hlc, link, payload_hash, -1 FROM archived_jobs WHERE job_id IN (SELECT value FROM json_each(?1)))
		ORDER BY o`
)

// enqueue is the body of Enqueue, EnqueueTx and Backfill; it returns the
// results in the order of b.Jobs and the number of chain entries written.
func (t *txn) enqueue(b *driver.EnqueueBatch, backfill bool) ([]driver.EnqueueResult, int, error) {
	res := make([]driver.EnqueueResult, len(b.Jobs))
	if len(b.Jobs) == 0 {
		return res, 0, nil
	}
	ids := make([]uuid.UUID, len(b.Jobs))
	for i, j := range b.Jobs {
		ids[i] = j.JobID
		res[i].JobID = j.JobID
	}
	list := idList(ids)

	existing := map[uuid.UUID]bool{}
	var current map[uuid.UUID]*driver.Prepared
	if backfill {
		if err := t.scanIDs(existing, existingStateSQL, list); err != nil {
			return nil, 0, fmt.Errorf("looking up existing jobs: %w", err)
		}
		var err error
		if current, err = t.legacyState(b.Jobs, list); err != nil {
			return nil, 0, fmt.Errorf("reading legacy jobs: %w", err)
		}
		for id, p := range current {
			if p.Status.Finished() {
				existing[id] = true // finished meanwhile: nothing to chain
			}
		}
	} else if err := t.scanIDs(existing, existingSQL, list); err != nil {
		return nil, 0, fmt.Errorf("looking up existing jobs: %w", err)
	}

	// The jobs to write: not stored yet, first occurrence in the batch.
	first := make(map[uuid.UUID]int, len(b.Jobs))
	var fresh []*driver.Prepared
	for i, j := range b.Jobs {
		if _, seen := first[j.JobID]; seen {
			continue
		}
		first[j.JobID] = i
		if existing[j.JobID] {
			continue
		}
		if p := current[j.JobID]; p != nil {
			j = p
		}
		fresh = append(fresh, j)
	}

	var written map[uuid.UUID]driver.AppendEntry
	if b.HLC && len(fresh) > 0 {
		var err error
		if written, err = t.appendChains(b, fresh, backfill); err != nil {
			return nil, 0, err
		}
	}
	if b.Legacy && !backfill && len(fresh) > 0 {
		if err := t.insertLegacy(b, fresh); err != nil {
			return nil, 0, err
		}
	}

	var dups []uuid.UUID
	for i, j := range b.Jobs {
		isNew := !existing[j.JobID]
		if e, ok := written[j.JobID]; ok {
			res[i].THLC, res[i].Link = e.THLCText, e.Link
			if i != first[j.JobID] {
				res[i].PayloadHash = e.Job.PayloadHash
			}
		}
		if i != first[j.JobID] || !isNew {
			res[i].Deduplicated = true
		}
		if !isNew && i == first[j.JobID] {
			dups = append(dups, j.JobID)
		}
	}
	if len(dups) > 0 {
		stored, err := t.storedLinks(dups)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the entries of duplicate jobs: %w", err)
		}
		for i := range res {
			if r, ok := stored[res[i].JobID]; ok {
				res[i].THLC, res[i].Link, res[i].PayloadHash = r.THLC, r.Link, r.PayloadHash
			}
		}
	}
	return res, len(written), nil
}

func (t *txn) scanIDs(into map[uuid.UUID]bool, query string, args ...any) error {
	rows, err := t.query(query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return err
		}
		into[id] = true
	}
	return rows.Err()
}

// legacyState returns copies of the jobs that have a legacy row, carrying
// that row's current status, attempts, lease and last error.
func (t *txn) legacyState(jobs []*driver.Prepared, list string) (map[uuid.UUID]*driver.Prepared, error) {
	byID := make(map[uuid.UUID]*driver.Prepared, len(jobs))
	for _, j := range jobs {
		if _, ok := byID[j.JobID]; !ok {
			byID[j.JobID] = j
		}
	}
	rows, err := t.query(legacyStateSQL, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]*driver.Prepared{}
	for rows.Next() {
		var id uuid.UUID
		var status string
		var attempts int
		var owner, token, lastErr, history, metadata sql.NullString
		var expires sql.NullInt64
		if err := rows.Scan(&id, &status, &attempts, &owner, &token, &expires, &lastErr, &history, &metadata); err != nil {
			return nil, err
		}
		orig := byID[id]
		if orig == nil {
			continue
		}
		p := *orig
		p.Status, p.Attempts, p.LeaseOwner, p.LastError = driver.Status(status), attempts, owner.String, lastErr.String
		p.AttemptErrors, p.Metadata = nil, nil
		if history.Valid {
			p.AttemptErrors = []byte(history.String)
		}
		if metadata.Valid {
			p.Metadata = []byte(metadata.String)
		}
		p.LeaseToken, p.LeaseExpiresAt = uuid.UUID{}, time.Time{}
		if token.Valid {
			if p.LeaseToken, err = uuid.Parse(token.String); err != nil {
				return nil, fmt.Errorf("job %s: lease token: %w", id, err)
			}
		}
		if expires.Valid {
			p.LeaseExpiresAt = fromMS(expires.Int64)
		}
		out[id] = &p
	}
	return out, rows.Err()
}

// appendChains appends fresh to their chains and writes their log entries,
// HLC state and chain heads.
func (t *txn) appendChains(b *driver.EnqueueBatch, fresh []*driver.Prepared, backfill bool) (map[uuid.UUID]driver.AppendEntry, error) {
	keys, groups := driver.GroupByChain(fresh)
	headStmt, err := t.stmt(headSQL)
	if err != nil {
		return nil, err
	}
	type chainWrite struct {
		key     chain.Key
		entries []driver.AppendEntry
		head    driver.Head
	}
	writes := make([]chainWrite, 0, len(keys))
	for _, k := range keys {
		var head driver.Head
		var link []byte
		var tHLC string
		err := headStmt.QueryRowContext(t.ctx, k.TenantID, k.PartitionKey).Scan(&link, &tHLC, &head.Count)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("reading the head of chain %s/%q: %w", k.TenantID, k.PartitionKey, err)
		default:
			if head, err = parseHead(link, tHLC, head.Count); err != nil {
				return nil, fmt.Errorf("chain %s/%q: %w", k.TenantID, k.PartitionKey, err)
			}
		}
		entries, next, err := b.Append(head, groups[k])
		if err != nil {
			return nil, err // an *hlc.DriftError stays matchable through the caller's wrapping
		}
		writes = append(writes, chainWrite{k, entries, next})
	}

	logStmt, err := t.stmt(insertLogSQL)
	if err != nil {
		return nil, err
	}
	stateStmt, err := t.stmt(insertStateSQL)
	if err != nil {
		return nil, err
	}
	headUpsert, err := t.stmt(upsertHeadSQL)
	if err != nil {
		return nil, err
	}
	now := ms(b.Now)
	written := make(map[uuid.UUID]driver.AppendEntry, len(fresh))
	for _, w := range writes {
		for _, e := range w.entries {
			j := e.Job
			var prev any
			if e.Pos > 0 {
				prev = e.PrevLink[:]
			}
			var srcNode, srcTHLC, srcPrev, srcLink any
			node := b.Node
			if src := j.Source; src != nil {
				srcNode, srcTHLC, srcLink = src.Node, src.THLC, src.Link[:]
				if !src.PrevNull {
					srcPrev = src.PrevLink[:]
				}
				node = src.Node // the node its t_hlc names, whichever node imports it
			}
			if _, err := logStmt.ExecContext(t.ctx, j.TenantID, e.THLCText, j.PartitionKey, j.JobID.String(), j.PayloadHash[:], prev,
				e.Link[:], ms(j.CreatedAt), e.Pos, node, j.Kind, string(j.Payload), j.Priority, j.MaxAttempts, ms(j.RunAt),
				nullText(j.IdempotencyKey), srcNode, srcTHLC, srcPrev, srcLink); err != nil {
				return nil, fmt.Errorf("writing the log entry of job %s: %w", j.JobID, err)
			}
			status, attempts := statusOf(j), 0
			var owner, token, expires, lastErr, history any
			if backfill {
				attempts = j.Attempts
				owner, token, expires, lastErr = nullText(j.LeaseOwner), nullUUID(j.LeaseToken), nullMS(j.LeaseExpiresAt), nullText(j.LastError)
				history = nullText(string(j.AttemptErrors))
			}
			if _, err := stateStmt.ExecContext(t.ctx, j.JobID.String(), j.TenantID, j.PartitionKey, e.THLCText, j.Kind, status, attempts,
				j.MaxAttempts, ms(j.RunAt), now, owner, token, expires, lastErr, history, nullText(string(j.Metadata))); err != nil {
				return nil, fmt.Errorf("writing the HLC state of job %s: %w", j.JobID, err)
			}
			written[j.JobID] = e
		}
		last := w.entries[len(w.entries)-1]
		if _, err := headUpsert.ExecContext(t.ctx, w.key.TenantID, w.key.PartitionKey, w.head.Link[:], last.THLCText, w.head.Count, now); err != nil {
			return nil, fmt.Errorf("moving the head of chain %s/%q: %w", w.key.TenantID, w.key.PartitionKey, err)
		}
	}
	// The clock's restart bound commits with the timestamps it covers (see
	// hlc.StateStore.BoundWrittenWithData): every timestamp stored here is below it.
	var highest int64
	for _, w := range writes {
		for _, e := range w.entries {
			highest = max(highest, e.THLC.Physical)
		}
	}
	if len(writes) > 0 {
		if _, err := t.exec(saveBound, b.Node, highest+1, now); err != nil {
			return nil, fmt.Errorf("writing the HLC bound of node %s: %w", b.Node, err)
		}
	}
	return written, nil
}

func (t *txn) insertLegacy(b *driver.EnqueueBatch, fresh []*driver.Prepared) error {
	s, err := t.stmt(insertLegacySQL)
	if err != nil {
		return err
	}
	now := ms(b.Now)
	for _, j := range fresh {
		if _, err := s.ExecContext(t.ctx, j.JobID.String(), j.TenantID, nullText(j.PartitionKey), j.Kind, string(j.Payload),
			j.PayloadHash.String(), j.Priority, statusOf(j), j.MaxAttempts, ms(j.RunAt), ms(j.CreatedAt), now, nullText(string(j.Metadata))); err != nil {
			return fmt.Errorf("writing the legacy row of job %s: %w", j.JobID, err)
		}
	}
	return nil
}

// statusOf is the status a new row gets: the prepared one, pending if unset.
func statusOf(j *driver.Prepared) string {
	if j.Status == "" {
		return string(driver.StatusPending)
	}
	return string(j.Status)
}

func (t *txn) storedLinks(ids []uuid.UUID) (map[uuid.UUID]driver.EnqueueResult, error) {
	rows, err := t.query(storedLinkSQL, idList(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]driver.EnqueueResult{}
	for rows.Next() {
		var r driver.EnqueueResult
		var link, hash []byte
		if err := rows.Scan(&r.JobID, &r.THLC, &link, &hash); err != nil {
			return nil, err
		}
		if _, dup := out[r.JobID]; dup {
			continue
		}
		r.Link, _ = chain.HashFromBytes(link) // the column's CHECK guarantees 32 bytes
		r.PayloadHash, _ = chain.HashFromBytes(hash)
		out[r.JobID] = r
	}
	return out, rows.Err()
}

// parseHead reads a chain_heads row into a driver.Head.
func parseHead(link []byte, tHLC string, count int64) (driver.Head, error) {
	h, err := chain.HashFromBytes(link)
	if err != nil {
		return driver.Head{}, fmt.Errorf("chain head: %w", err)
	}
	ts, err := hlc.Parse(tHLC)
	if err != nil {
		return driver.Head{}, fmt.Errorf("chain head: %w", err)
	}
	return driver.Head{Exists: true, Link: h, THLC: ts, Count: count}, nil
}
