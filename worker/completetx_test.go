package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
	"github.com/ordo-sched/ordo/worker"
)

type ledgerArgs struct {
	Account string `json:"account"`
}

func (ledgerArgs) Kind() string { return "test.ledger" }

// appTx is a transaction of the application's own, on the queue's database.
type appTx struct {
	tx               any
	exec             func(sql string, args ...any) error
	commit, rollback func() error
}

func (e *env) begin(t *testing.T) appTx {
	t.Helper()
	ctx := context.Background()
	switch db := e.backend.(type) {
	case *postgres.DB:
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return appTx{tx: tx,
			exec:     func(q string, args ...any) error { _, err := tx.Exec(ctx, q, args...); return err },
			commit:   func() error { return tx.Commit(ctx) },
			rollback: func() error { return tx.Rollback(ctx) }}
	case *sqlite.DB:
		tx, err := db.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return appTx{tx: tx,
			exec:     func(q string, args ...any) error { _, err := tx.ExecContext(ctx, sqliteSQL(q), args...); return err },
			commit:   tx.Commit,
			rollback: tx.Rollback}
	}
	t.Fatalf("no transactions for %T", e.backend)
	return appTx{}
}

// Issue 15: a handler completes its job in its own transaction, so its
// writes and the completion commit together. An attempt whose transaction
// rolled back is not completed behind the handler's back: it fails, and the
// job runs again; the effect is written exactly once.
func TestCompleteTxCommitsWithTheHandlersWrites(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		setup := e.begin(t)
		if err := setup.exec("CREATE TABLE app_ledger (job TEXT, attempt INTEGER)"); err != nil {
			t.Fatal(err)
		}
		if err := setup.commit(); err != nil {
			t.Fatal(err)
		}
		w := handling(func(ctx context.Context, job *worker.Job[ledgerArgs]) error {
			tx := e.begin(t)
			if err := tx.exec("INSERT INTO app_ledger (job, attempt) VALUES ($1, $2)", job.JobID.String(), job.Attempt); err != nil {
				_ = tx.rollback()
				return err
			}
			if err := worker.CompleteTx(ctx, tx.tx, job); err != nil {
				_ = tx.rollback()
				return err
			}
			if job.Attempt == 1 {
				return tx.rollback() // the commit "fails": nothing of this attempt stays
			}
			return tx.commit()
		})
		q, rec, cfg := e.nodeA(t, w)
		startClient(t, q, cfg)
		res, err := worker.Insert(ctx, q, "acme", ledgerArgs{Account: "ada"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		failed := rec.await(t, "the rolled-back attempt to fail", isAttempt(worker.EventJobFailed, res.JobID, 1))
		if failed.Err == nil || !strings.Contains(failed.Err.Error(), "did not commit") || !failed.Retried {
			t.Fatalf("the rolled-back attempt: %+v; want a retried failure saying the transaction did not commit", failed.Event)
		}
		e.wall.Advance(time.Hour) // past its backoff
		rec.await(t, "the second attempt to succeed", isAttempt(worker.EventJobSucceeded, res.JobID, 2))
		info, err := q.Get(ctx, res.JobID)
		if err != nil || info.Status != queue.StatusSucceeded {
			t.Fatalf("job: %+v, %v", info, err)
		}
		n, err := e.count(ctx, "SELECT count(*) FROM app_ledger WHERE job = $1", res.JobID.String())
		if err != nil || n != 1 {
			t.Fatalf("the ledger has %d rows for the job (%v), want the committed attempt's one", n, err)
		}
		// CompleteTx outside a handler's ctx is refused.
		if err := worker.CompleteTx(ctx, nil, &worker.Job[ledgerArgs]{Lease: queue.Lease{JobID: res.JobID}}); err == nil {
			t.Fatal("CompleteTx without the handler's ctx: no error")
		}
	})
}
