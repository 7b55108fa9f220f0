package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/sqlite"
	"github.com/ordo-sched/ordo/worker"
)

// EmailArgs are a job's arguments: a plain struct that survives
// encoding/json, with a Kind naming the job kind.
type EmailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func (EmailArgs) Kind() string { return "email.send" }

// EmailWorker handles email.send jobs.
type EmailWorker struct{}

func (EmailWorker) Work(ctx context.Context, job *worker.Job[EmailArgs]) error {
	if job.Args.To == "" {
		// Retrying cannot fix this: fail for good.
		return worker.NoRetry(errors.New("no recipient"))
	}
	fmt.Printf("sending %q to %s (attempt %d)\n", job.Args.Subject, job.Args.To, job.Attempt)
	return nil // done; any other error is retried with backoff
}

// openTempQueue opens an embedded SQLite queue in a new temporary
// directory; closeQueue closes it and removes the directory.
func openTempQueue(ctx context.Context) (q *queue.Queue, closeQueue func()) {
	dir, err := os.MkdirTemp("", "ordo-example-")
	if err != nil {
		log.Fatal(err)
	}
	q, err = openQueue(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	return q, func() {
		_ = q.Close()
		_ = os.RemoveAll(dir)
	}
}

// openQueue opens (and migrates) an embedded SQLite queue in dir.
func openQueue(ctx context.Context, dir string) (*queue.Queue, error) {
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ordo.db"))
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: "example", Store: db.HLCState()})
	if err != nil {
		return nil, err
	}
	return queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true}})
}

// Register a worker, start a client, insert a job, and stop gracefully.
func Example() {
	ctx := context.Background()
	q, closeQueue := openTempQueue(ctx)
	defer closeQueue()

	workers := worker.NewWorkers()
	worker.AddWorker(workers, EmailWorker{}, worker.KindOptions{
		Queue:       "email", // its own concurrency limit, below
		Timeout:     30 * time.Second,
		MaxAttempts: 5,
	})

	done := make(chan struct{})
	client, err := worker.NewClient(q, worker.Config{
		Workers: workers,
		Queues:  map[string]worker.QueueConfig{"email": {MaxWorkers: 10}},
		OnEvent: func(e worker.Event) {
			// Events feed metrics, logs and dashboards; here, the example's end.
			if e.Type == worker.EventJobSucceeded {
				fmt.Println("succeeded:", e.Lease.Kind)
				close(done)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}

	// Insert marshals the args and uses their Kind; the kind's MaxAttempts
	// applies.
	if _, err := client.Insert(ctx, "acme", EmailArgs{To: "ada@example.com", Subject: "Welcome"}, nil); err != nil {
		log.Fatal(err)
	}
	<-done

	// Stop waits for running jobs until its context ends, then hands them
	// back to the queue.
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// sending "Welcome" to ada@example.com (attempt 1)
	// succeeded: email.send
}

type ReportArgs struct {
	For time.Time `json:"for"`
}

func (ReportArgs) Kind() string { return "report.build" }

// A periodic job: the leader enqueues one job per occurrence, with an
// idempotency key made of the schedule's name and the occurrence's time,
// so no occurrence is ever enqueued twice, even by two leaders at once.
func Example_periodic() {
	ctx := context.Background()
	q, closeQueue := openTempQueue(ctx)
	defer closeQueue()

	done := make(chan struct{})
	workers := worker.NewWorkers()
	worker.AddWorker(workers, worker.WorkFunc[ReportArgs](func(ctx context.Context, job *worker.Job[ReportArgs]) error {
		fmt.Println("building the report of the occurrence enqueued at start")
		close(done)
		return nil
	}))
	client, err := worker.NewClient(q, worker.Config{
		Workers: workers,
		PeriodicJobs: []worker.PeriodicJob{{
			Name:     "nightly-report",
			Schedule: worker.MustCron("0 2 * * *"), // 02:00 UTC every day
			TenantID: "acme",
			Args: func(at time.Time) (worker.Args, *worker.InsertOpts) {
				return ReportArgs{For: at}, nil
			},
			// A leader looks back this far for an occurrence it missed
			// (here: so that the example has one to run right away).
			CatchUp: 24 * time.Hour,
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-done
	if err := client.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// building the report of the occurrence enqueued at start
}

// Test a handler without a database: Work runs one job through it as a
// client would and classifies the result.
func ExampleWork() {
	ctx := context.Background()
	res := worker.Work(ctx, EmailWorker{}, EmailArgs{Subject: "Welcome"})
	fmt.Println(res.Outcome, "-", res.Err)
	res = worker.Work(ctx, EmailWorker{}, EmailArgs{To: "ada@example.com", Subject: "Welcome"})
	fmt.Println(res.Outcome)
	// Output:
	// discarded - no recipient
	// sending "Welcome" to ada@example.com (attempt 1)
	// succeeded
}

// Handlers return these to say what happens to their job.
func ExampleJobSnooze() {
	handler := worker.WorkFunc[EmailArgs](func(ctx context.Context, job *worker.Job[EmailArgs]) error {
		if job.Attempt == 1 {
			// Not a failure: try again in a minute, attempt not counted.
			return worker.JobSnooze(time.Minute)
		}
		return worker.JobCancel(errors.New("the customer closed the account"))
	})
	res := worker.Work(context.Background(), handler, EmailArgs{To: "ada@example.com"})
	fmt.Println(res.Outcome, res.SnoozeFor)
	// Output: snoozed 1m0s
}

func ExampleCron() {
	s, err := worker.Cron("0 9 * * mon-fri")
	if err != nil {
		log.Fatal(err)
	}
	friday := time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC)
	fmt.Println(s.Next(friday))
	// Output: 2024-01-08 09:00:00 +0000 UTC
}

// A plain function handler decodes the payload itself.
func ExampleAddFunc() {
	workers := worker.NewWorkers()
	worker.AddFunc(workers, "cache.purge", func(ctx context.Context, l *queue.Lease) error {
		fmt.Printf("purging for %s: %s\n", l.TenantID, l.Payload)
		return nil
	}, worker.KindOptions{Timeout: 5 * time.Second})
	fmt.Println(workers.Kinds())
	// Output: [cache.purge]
}

// Say what makes two inserts the same job: here, one reminder per
// customer and hour, whatever the note says.
func ExampleUniqueOpts() {
	ctx := context.Background()
	q, closeQueue := openTempQueue(ctx)
	defer closeQueue()

	opts := &worker.InsertOpts{Unique: worker.UniqueOpts{ByFields: []string{"customer"}, ByPeriod: time.Hour}}
	for _, note := range []string{"first", "second"} {
		res, err := worker.Insert(ctx, q, "acme", ReminderArgs{Customer: "ada", Note: note}, opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(note, "deduplicated:", res.Deduplicated)
	}
	// Output:
	// first deduplicated: false
	// second deduplicated: true
}

// ReminderArgs are the args of ExampleUniqueOpts.
type ReminderArgs struct {
	Customer string `json:"customer"`
	Note     string `json:"note"`
}

func (ReminderArgs) Kind() string { return "reminder.send" }

// InvoiceArgs are the args of ExampleCompleteTx.
type InvoiceArgs struct {
	Number int `json:"number"`
}

func (InvoiceArgs) Kind() string { return "invoice.book" }

// Complete a job in the handler's own transaction: the invoice is booked
// and the job completed together, or neither is.
func ExampleCompleteTx() {
	ctx := context.Background()
	q, closeQueue := openTempQueue(ctx)
	defer closeQueue()
	db := q.Backend().(*sqlite.DB).SQL // on PostgreSQL, a pgx.Tx of your pool
	if _, err := db.ExecContext(ctx, "CREATE TABLE invoices (number INTEGER PRIMARY KEY)"); err != nil {
		log.Fatal(err)
	}

	workers := worker.NewWorkers()
	worker.AddWorker(workers, worker.WorkFunc[InvoiceArgs](func(ctx context.Context, job *worker.Job[InvoiceArgs]) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() // a no-op after Commit
		if _, err := tx.ExecContext(ctx, "INSERT INTO invoices (number) VALUES (?)", job.Args.Number); err != nil {
			return err
		}
		if err := worker.CompleteTx(ctx, tx, job); err != nil {
			return err
		}
		return tx.Commit()
	}))
	done := make(chan struct{})
	client, err := worker.NewClient(q, worker.Config{Workers: workers, OnEvent: func(e worker.Event) {
		if e.Type == worker.EventJobSucceeded {
			close(done)
		}
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := client.Insert(ctx, "acme", InvoiceArgs{Number: 1001}, nil); err != nil {
		log.Fatal(err)
	}
	<-done
	if err := client.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM invoices").Scan(&n); err != nil {
		log.Fatal(err)
	}
	fmt.Println("invoices booked:", n)
	// Output:
	// invoices booked: 1
}
