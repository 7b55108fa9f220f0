package ordotest_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/ordotest"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// In an application's test: the code under test enqueues a job; the test
// asserts it was enqueued with the right args, then runs it through its
// worker as a client would.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ordotest-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := ordo.Open(ctx, "sqlite:"+filepath.Join(dir, "ordo.db"), ordo.Config{Node: "example", Hlc: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	// The code under test.
	if _, err := worker.Insert(ctx, q, "acme", SignupArgs{Email: "ada@example.com", Plan: "pro"}, nil); err != nil {
		log.Fatal(err)
	}

	t := &testing.T{} // in a real test, the test's own t
	job := ordotest.RequireInserted(t, q, "acme", SignupArgs{Email: "ada@example.com", Plan: "pro"})
	fmt.Println("enqueued:", job.Kind, job.Status)
	_, res := ordotest.WorkNext(t, q, "acme", worker.WorkFunc[SignupArgs](func(ctx context.Context, job *worker.Job[SignupArgs]) error {
		fmt.Println("welcoming", job.Args.Email)
		return nil
	}))
	fmt.Println("outcome:", res.Outcome)
	// Output:
	// enqueued: signup.welcome pending
	// welcoming ada@example.com
	// outcome: succeeded
}
