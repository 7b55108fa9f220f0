// Package ordotest helps the tests of applications that use ordo: assert
// that a job was enqueued, in the database or in a transaction not yet
// committed, list what was enqueued, and run the next job through its
// worker as a client would, outcome recorded.
//
// Its invariants: it reads and writes the real queue (no fake of it), so
// what a test sees is what production would; an assertion that fails
// says what was enqueued instead; and it changes nothing but what a
// worker client would change (WorkNext), so a test can go on using the
// queue afterwards.
package ordotest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// InsertedJob is an enqueued job with its args decoded.
type InsertedJob[T worker.Args] struct {
	queue.JobInfo
	Args T
}

// Inserted lists the jobs of T's kind enqueued for tenant, on both sides
// of the queue, HLC-side jobs first in t_hlc order, then legacy-only jobs
// by created_at (the order of `ordo jobs list`).
func Inserted[T worker.Args](ctx context.Context, q *queue.Queue, tenant string) ([]InsertedJob[T], error) {
	var zero T
	p := driver.ListParams{TenantID: tenant, Kind: zero.Kind(), WithPayload: true, Limit: driver.MaxListLimit}
	var out []InsertedJob[T]
	for {
		page, next, err := q.Backend().ListJobs(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, j := range page {
			var args T
			if err := json.Unmarshal(j.Payload, &args); err != nil {
				return nil, fmt.Errorf("ordotest: job %s of kind %s does not decode into %T: %w", j.JobID, j.Kind, args, err)
			}
			out = append(out, InsertedJob[T]{JobInfo: j, Args: args})
		}
		if next == "" {
			return out, nil
		}
		p.Cursor = next
	}
}

// RequireInserted fails t unless a job of want's kind, with args equal to
// want (after a JSON round trip, as the worker would decode them), was
// enqueued for tenant; it returns the first such job.
func RequireInserted[T worker.Args](t testing.TB, q *queue.Queue, tenant string, want T) InsertedJob[T] {
	t.Helper()
	jobs, err := Inserted[T](context.Background(), q, tenant)
	if err != nil {
		t.Fatalf("ordotest: listing %s jobs of tenant %s: %v", want.Kind(), tenant, err)
	}
	wantArgs := roundTrip(t, want)
	for _, j := range jobs {
		if reflect.DeepEqual(j.Args, wantArgs) {
			return j
		}
	}
	t.Fatalf("ordotest: no %s job of tenant %s with args %+v; enqueued: %s", want.Kind(), tenant, want, describe(jobs))
	return InsertedJob[T]{}
}

// RequireInsertedTx is RequireInserted inside the caller's transaction tx
// (a pgx.Tx on PostgreSQL, a *sql.Tx on SQLite, as queue.EnqueueTx
// takes), so that a test sees what its code enqueued before it commits.
// It returns the decoded args of the first match.
func RequireInsertedTx[T worker.Args](t testing.TB, tx any, tenant string, want T) T {
	t.Helper()
	payloads, err := payloadsInTx(context.Background(), tx, tenant, want.Kind())
	if err != nil {
		t.Fatalf("ordotest: reading %s jobs of tenant %s in the transaction: %v", want.Kind(), tenant, err)
	}
	wantArgs := roundTrip(t, want)
	var seen []string
	for _, p := range payloads {
		var args T
		if err := json.Unmarshal([]byte(p), &args); err == nil && reflect.DeepEqual(args, wantArgs) {
			return args
		}
		seen = append(seen, p)
	}
	t.Fatalf("ordotest: no %s job of tenant %s with args %+v in the transaction; enqueued: [%s]", want.Kind(), tenant, want, strings.Join(seen, ", "))
	return want
}

// The payloads of a tenant's jobs of one kind, on both sides, read in the
// caller's transaction. $1/?1 tenant, $2/?2 kind.
const (
	payloadsPostgres = `SELECT payload FROM scheduler.scheduler_log WHERE tenant_id = $1 AND kind = $2
		UNION ALL
		SELECT j.payload::text FROM scheduler.jobs j WHERE j.tenant_id = $1 AND j.kind = $2
		  AND NOT EXISTS (SELECT 1 FROM scheduler.scheduler_log l WHERE l.job_id = j.id)`
	payloadsSQLite = `SELECT payload FROM scheduler_log WHERE tenant_id = ?1 AND kind = ?2
		UNION ALL
		SELECT j.payload FROM jobs j WHERE j.tenant_id = ?1 AND j.kind = ?2
		  AND NOT EXISTS (SELECT 1 FROM scheduler_log l WHERE l.job_id = j.id)`
)

func payloadsInTx(ctx context.Context, tx any, tenant, kind string) ([]string, error) {
	var rows interface {
		Next() bool
		Scan(dest ...any) error
		Err() error
	}
	var err error
	switch tx := tx.(type) {
	case pgx.Tx:
		var r pgx.Rows
		if r, err = tx.Query(ctx, payloadsPostgres, tenant, kind); err == nil {
			defer r.Close()
			rows = r
		}
	case *sql.Tx:
		var r *sql.Rows
		if r, err = tx.QueryContext(ctx, payloadsSQLite, tenant, kind); err == nil {
			defer r.Close()
			rows = r
		}
	default:
		return nil, fmt.Errorf("want a pgx.Tx or a *sql.Tx, got %T", tx)
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// WorkNext hands out the next due job of T's kind for tenant, runs it
// through w, and records its outcome as a worker client would (complete,
// retry or fail, snooze, cancel). It fails t when no job is due.
func WorkNext[T worker.Args](t testing.TB, q *queue.Queue, tenant string, w worker.Worker[T]) (InsertedJob[T], worker.Result) {
	t.Helper()
	ctx := context.Background()
	var zero T
	leases, err := q.Dequeue(ctx, queue.DequeueOptions{Kinds: []string{zero.Kind()}, TenantID: tenant, Owner: "ordotest"})
	if err != nil {
		t.Fatalf("ordotest: dequeuing a %s job of tenant %s: %v", zero.Kind(), tenant, err)
	}
	if len(leases) == 0 {
		t.Fatalf("ordotest: no %s job of tenant %s is due", zero.Kind(), tenant)
	}
	l := leases[0]
	var args T
	if err := json.Unmarshal(l.Payload, &args); err != nil {
		t.Fatalf("ordotest: job %s does not decode into %T: %v", l.JobID, args, err)
	}
	res := worker.WorkJob(ctx, w, &worker.Job[T]{Lease: l, Args: args})
	switch res.Outcome {
	case worker.OutcomeSucceeded:
		err = q.Complete(ctx, l)
	case worker.OutcomeSnoozed:
		err = q.Snooze(ctx, l, res.SnoozeFor)
	case worker.OutcomeCancelled:
		err = q.CancelLeased(ctx, l, fmt.Sprint(res.Err))
	default:
		_, err = q.Fail(ctx, l, res.Err, queue.FailOptions{NoRetry: res.Outcome == worker.OutcomeDiscarded})
	}
	if err != nil {
		t.Fatalf("ordotest: recording the outcome of job %s: %v", l.JobID, err)
	}
	info, err := q.Get(ctx, l.JobID)
	if err != nil {
		t.Fatalf("ordotest: reading job %s: %v", l.JobID, err)
	}
	return InsertedJob[T]{JobInfo: info, Args: args}, res
}

func roundTrip[T worker.Args](t testing.TB, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("ordotest: marshalling %T: %v", v, err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("ordotest: %T does not survive JSON: %v", v, err)
	}
	return out
}

func describe[T worker.Args](jobs []InsertedJob[T]) string {
	if len(jobs) == 0 {
		return "none"
	}
	parts := make([]string, len(jobs))
	for i, j := range jobs {
		parts[i] = fmt.Sprintf("%s %+v (%s)", j.JobID, j.Args, j.Status)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
