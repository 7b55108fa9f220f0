package ordo_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/queue"
)

// Open a queue on the embedded default, enqueue, lease in HLC order and
// complete. Replace the URL with postgres://... to run on PostgreSQL.
func ExampleOpen() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ordo-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	q, err := ordo.Open(ctx, "sqlite:"+filepath.Join(dir, "ordo.db"), ordo.Config{
		Node: "scheduler-east-1",
		Hlc:  queue.Options{EnableHlcOrdering: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	for _, day := range []string{"mon", "tue", "wed"} {
		if _, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "report", Payload: []byte(`{"day":"` + day + `"}`)}); err != nil {
			log.Fatal(err)
		}
	}
	// The same payload again is the same job: nothing new is written.
	again, _ := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "report", Payload: []byte(`{"day":"mon"}`)})
	fmt.Println("deduplicated:", again.Deduplicated)

	leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range leases {
		fmt.Println(string(l.Payload))
		if err := q.Complete(ctx, l); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// deduplicated: true
	// {"day":"mon"}
	// {"day":"tue"}
	// {"day":"wed"}
}
