package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/queue"
)

// waitBlockedBy returns once some other backend waits for a lock that
// backend pid holds. PostgreSQL announces no lock wait, so this asks it,
// as its own isolation tester does, until a deadline.
func waitBlockedBy(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var blocked bool
		if err := q.QueryRow(context.Background(),
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE $1 = ANY (pg_blocking_pids(a.pid)))`, pid).Scan(&blocked); err != nil {
			t.Fatal(err)
		}
		if blocked {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no backend came to wait for backend %d's lock within 30s", pid)
}

// TestStateChangeFollowsACopyCommittedMeanwhile: a reconciliation in
// another process (the rollback drain copying an HLC-only job to the
// legacy table, or a backfill copying a legacy job to the HLC side) holds
// the source row while a worker's completion of that job waits for it.
// When the copy commits, the completion must reach the copy too: a copy
// left running would be rescued once its lease expired and run the job a
// second time (the runbook test saw one such legacy row).
func TestStateChangeFollowsACopyCommittedMeanwhile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		opts   queue.Options
		source string // the side the reconciliation copies from, locked while it copies
		copy   string // the copy, written in the holder's transaction
	}{
		{"rollback drain", queue.Options{EnableHlcOrdering: true},
			`SELECT 1 FROM scheduler.job_state WHERE job_id = $1 FOR UPDATE`,
			`INSERT INTO scheduler.jobs (id, tenant_id, project_id, kind, payload, payload_digest, priority, status, attempts,
				max_attempts, run_at, created_at, updated_at, lease_owner, lease_token, lease_expires_at)
			SELECT s.job_id, s.tenant_id, NULLIF(s.partition_key, ''), s.kind, l.payload::jsonb, encode(l.payload_hash, 'hex'),
				l.priority, s.status, s.attempts, s.max_attempts, s.run_at, l.created_at, now(), s.lease_owner, s.lease_token, s.lease_expires_at
			FROM scheduler.job_state s JOIN scheduler.scheduler_log l ON l.tenant_id = s.tenant_id AND l.t_hlc = s.t_hlc
			WHERE s.job_id = $1`},
		{"backfill", queue.Options{},
			`SELECT 1 FROM scheduler.jobs WHERE id = $1 FOR UPDATE`,
			`INSERT INTO scheduler.job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, attempts, max_attempts,
				run_at, updated_at, lease_owner, lease_token, lease_expires_at)
			SELECT id, tenant_id, COALESCE(project_id, ''), '1704067200000-000000-node-b', kind, status, attempts, max_attempts,
				run_at, now(), lease_owner, lease_token, lease_expires_at
			FROM scheduler.jobs WHERE id = $1`},
	} {
		t.Run(c.name, func(t *testing.T) {
			qs := newQueues(t)
			q := qs.queue(c.opts)
			res, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(fmt.Sprintf(`{"case":%q}`, c.name))})
			if err != nil {
				t.Fatal(err)
			}
			leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 1, Owner: "worker-1", LeaseFor: time.Minute})
			if err != nil || len(leases) != 1 {
				t.Fatalf("dequeue: %v, %v", leases, err)
			}

			holder, err := qs.db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = holder.Rollback(ctx) }()
			var pid int
			if err := holder.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := holder.Exec(ctx, c.source, res.JobID); err != nil {
				t.Fatal(err)
			}
			if tag, err := holder.Exec(ctx, c.copy, res.JobID); err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("copying the job: %v, %v", tag, err)
			}

			completed := make(chan error, 1)
			go func() { completed <- q.Complete(ctx, leases[0]) }()
			waitBlockedBy(t, qs.db.Pool, pid)
			if err := holder.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-completed:
				if err != nil {
					t.Fatalf("Complete: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Complete did not return after the copy committed")
			}

			var legacy, hlcSide string
			if err := qs.db.Pool.QueryRow(ctx, `SELECT (SELECT status FROM scheduler.jobs WHERE id = $1), (SELECT status FROM scheduler.job_state WHERE job_id = $1)`,
				res.JobID).Scan(&legacy, &hlcSide); err != nil {
				t.Fatal(err)
			}
			if legacy != "succeeded" || hlcSide != "succeeded" {
				t.Fatalf("after the completion: legacy row %s, HLC state %s; want both succeeded", legacy, hlcSide)
			}
		})
	}
}

// TestRetryAndDeleteTakeLocksInTheStateChangesOrder: a state change locks
// a job's legacy row, then its HLC row. A retry or delete of the running
// job that came in between must wait for the legacy row rather than hold
// the HLC row the change needs next: in the other order the two
// deadlocked, and PostgreSQL aborted one (40P01) instead of the retry
// answering ErrNotRetryable.
func TestRetryAndDeleteTakeLocksInTheStateChangesOrder(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		op   func(q *queue.Queue, id uuid.UUID) error
		want error
	}{
		{"retry", func(q *queue.Queue, id uuid.UUID) error { return q.Retry(ctx, id) }, queue.ErrNotRetryable},
		{"delete", func(q *queue.Queue, id uuid.UUID) error { return q.DeleteJob(ctx, id) }, queue.ErrJobNotFinished},
	} {
		t.Run(c.name, func(t *testing.T) {
			qs := newQueues(t)
			q := qs.queue(queue.Options{EnableHlcOrdering: true, DualWriteMode: true})
			res, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(fmt.Sprintf(`{"case":%q}`, c.name))})
			if err != nil {
				t.Fatal(err)
			}
			if leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 1, LeaseFor: time.Minute}); err != nil || len(leases) != 1 {
				t.Fatalf("dequeue: %v, %v", leases, err)
			}

			// The state change's first statement: the legacy row, locked.
			change, err := qs.db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = change.Rollback(ctx) }()
			var pid int
			if err := change.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
				t.Fatal(err)
			}
			if _, err := change.Exec(ctx, `SELECT 1 FROM scheduler.jobs WHERE id = $1 FOR UPDATE`, res.JobID); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.op(q, res.JobID) }()
			waitBlockedBy(t, qs.db.Pool, pid)
			// Its next statement: the HLC row. The retry or delete, waiting
			// for the legacy row, must not hold it (NOWAIT: a lock held
			// there would be the deadlock, which PostgreSQL breaks only
			// after deadlock_timeout).
			if _, err := change.Exec(ctx, `SELECT 1 FROM scheduler.job_state WHERE job_id = $1 FOR UPDATE NOWAIT`, res.JobID); err != nil {
				t.Fatalf("the %s holds the HLC row while it waits for the legacy one: %v", c.name, err)
			}
			if err := change.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, c.want) {
					t.Fatalf("%s of a running job: %v, want %v", c.name, err, c.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s did not return after the state change committed", c.name)
			}
		})
	}
}
