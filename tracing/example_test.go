package tracing_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/tracing"
	"github.com/ordo-sched/ordo/worker"
)

// Trace inserts and runs: add the middleware to the client's config. Here
// the spans go to the SDK's in-memory recorder; in a service, to the
// TracerProvider its exporter is set up with.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ordo-tracing-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := ordo.Open(ctx, "sqlite:"+filepath.Join(dir, "ordo.db"), ordo.Config{Node: "example", Hlc: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	recorder := tracetest.NewSpanRecorder()
	mw := tracing.New(tracing.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))})

	workers := worker.NewWorkers()
	worker.AddWorker(workers, worker.WorkFunc[invoiceArgs](func(ctx context.Context, job *worker.Job[invoiceArgs]) error {
		return nil
	}))
	finished := make(chan struct{})
	client, err := worker.NewClient(q, worker.Config{
		Workers:          workers,
		InsertMiddleware: []worker.InsertMiddleware{mw.Insert()},
		WorkMiddleware:   []worker.WorkMiddleware{mw.Work()},
		OnEvent: func(e worker.Event) {
			if e.Type == worker.EventJobSucceeded {
				close(finished)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.Insert(ctx, "acme", invoiceArgs{Number: 7}, nil); err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-finished
	if err := client.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	spans := recorder.Ended()
	insert, work := spans[0], spans[1]
	fmt.Println(insert.Name(), "then", work.Name())
	fmt.Println("the run is a child of the insert:", work.Parent().SpanID() == insert.SpanContext().SpanID())
	// Output:
	// ordo.insert then ordo.work
	// the run is a child of the insert: true
}
