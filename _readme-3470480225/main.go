package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

type EmailArgs struct {
	To string `json:"to"`
}

func (EmailArgs) Kind() string { return "email.send" }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// "postgres://user@host/db" instead runs the same code on PostgreSQL.
	q, err := ordo.Open(ctx, "sqlite:ordo.db", ordo.Config{Hlc: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	workers := worker.NewWorkers()
	worker.AddWorker(workers, worker.WorkFunc[EmailArgs](func(ctx context.Context, job *worker.Job[EmailArgs]) error {
		fmt.Println("sending to", job.Args.To, "attempt", job.Attempt)
		return nil // an error is retried with backoff; worker.NoRetry(err) fails for good
	}))
	client, err := worker.NewClient(q, worker.Config{Workers: workers})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	// The same args are the same job, for ever: run this program again and
	// it finds the job of the first run (deduplicated) and sends nothing.
	// InsertOpts.Unique says otherwise, e.g. one mail per address a day:
	//   &worker.InsertOpts{Unique: worker.UniqueOpts{ByPeriod: 24 * time.Hour}}
	res, err := client.Insert(ctx, "acme", EmailArgs{To: "ada@example.com"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("job", res.JobID, "deduplicated:", res.Deduplicated)
	<-ctx.Done()                          // Ctrl-C
	_ = client.Stop(context.Background()) // running jobs finish, or go back to the queue
}
