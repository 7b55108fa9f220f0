package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/worker"
)

// The helper process reads these; the parent sets them.
const (
	helperDBEnv   = "ORDO_WORKER_HELPER_DB"
	helperNodeEnv = "ORDO_WORKER_HELPER_NODE"
)

type killArgs struct {
	N     int  `json:"n"`
	Block bool `json:"block"` // the first attempt announces itself and hangs until killed
}

func (killArgs) Kind() string { return "test.kill" }

// TestMain turns a copy of the test binary into a worker process for
// TestKillWorkerProcess when the parent sets helperDBEnv.
func TestMain(m *testing.M) {
	if url := os.Getenv(helperDBEnv); url != "" {
		if err := runHelperProcess(url, os.Getenv(helperNodeEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "worker helper process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelperProcess works jobs until its stdin closes.
func runHelperProcess(url, node string) error {
	ctx := context.Background()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: node, Store: db.HLCState()})
	if err != nil {
		return err
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true, VerifyOnDequeue: true}})
	if err != nil {
		return err
	}
	defer q.Close()
	w := handling(func(ctx context.Context, j *worker.Job[killArgs]) error {
		if j.Args.Block && j.Attempt == 1 {
			if _, err := db.Pool.Exec(ctx, `SELECT pg_notify('worker_test', $1)`, "blocked "+node); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}
		// The job's effect and the notice of it commit together.
		return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO worker_test_runs (job_id, node, attempt) VALUES ($1, $2, $3)`, j.JobID, node, j.Attempt)
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				_, _ = db.Pool.Exec(ctx, `INSERT INTO worker_test_dups (job_id, node) VALUES ($1, $2)`, j.JobID, node)
				return worker.NoRetry(fmt.Errorf("job %s ran twice", j.JobID))
			}
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `SELECT pg_notify('worker_test', 'ran')`)
			return err
		})
	}, worker.KindOptions{Timeout: -1})
	c, err := worker.NewClient(q, worker.Config{
		Workers: w, ID: node,
		// One slot: when the parent kills this process for hanging in the
		// blocking job, that is the only job it holds, so no other job can
		// be caught between its effect's commit and its completion (which
		// only a completion inside the handler's transaction could close).
		MaxWorkers: 1,
		LeaseFor:   2 * time.Second, HeartbeatInterval: 300 * time.Millisecond,
		PollInterval: 100 * time.Millisecond, MaintenanceInterval: 200 * time.Millisecond, LeaderTTL: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Stop(stopCtx)
}

type child struct {
	node  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
}

// TestKillWorkerProcess runs two worker processes on one PostgreSQL
// database and kills one with SIGKILL in the middle of a job: every job
// must still succeed exactly once, the killed one on the survivor after
// its lease expires, and the chain must verify.
func TestKillWorkerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	db := testdb.OpenMigrated(t, postgres.Open, url)
	if _, err := db.Pool.Exec(ctx, `
		CREATE TABLE worker_test_runs (job_id uuid PRIMARY KEY, node text NOT NULL, attempt int NOT NULL);
		CREATE TABLE worker_test_dups (job_id uuid NOT NULL, node text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: "parent", Store: db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true, VerifyOnDequeue: true}})
	if err != nil {
		t.Fatal(err)
	}
	listen, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listen.Close(context.Background()) })
	if _, err := listen.Exec(ctx, `LISTEN worker_test`); err != nil {
		t.Fatal(err)
	}

	const n = 60
	const victim = n / 2 // by then both processes are busy
	params := make([]worker.InsertManyParams, n)
	for i := range params {
		params[i] = worker.InsertManyParams{TenantID: "acme", Args: killArgs{N: i, Block: i == victim}}
	}
	res, err := worker.InsertMany(ctx, q, params)
	if err != nil {
		t.Fatal(err)
	}

	children := map[string]*child{}
	for _, node := range []string{"worker-a", "worker-b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperDBEnv+"="+url, helperNodeEnv+"="+node)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		ch := &child{node: node, cmd: cmd, stdin: stdin, out: &syncBuffer{}}
		cmd.Stdout, cmd.Stderr = ch.out, ch.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[node] = ch
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("output of %s:\n%s", node, ch.out.String())
			}
		})
	}

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	killed := ""
	for runs := 0; runs < n; {
		note, err := listen.WaitForNotification(wctx)
		if err != nil {
			t.Fatalf("waiting for the workers (%d of %d jobs run, killed %q): %v", runs, n, killed, err)
		}
		if node, ok := strings.CutPrefix(note.Payload, "blocked "); ok {
			if killed != "" {
				t.Fatalf("%s hung in the blocking job after %s was killed for it: it ran its first attempt twice", node, killed)
			}
			ch := children[node]
			if err := ch.cmd.Process.Signal(os.Kill); err != nil {
				t.Fatal(err)
			}
			_ = ch.cmd.Wait() // "signal: killed"
			killed = node
			continue
		}
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM worker_test_runs`).Scan(&runs); err != nil {
			t.Fatal(err)
		}
	}
	if killed == "" {
		t.Fatal("no process ever hung in the blocking job")
	}
	for node, ch := range children {
		if node == killed {
			continue
		}
		_ = ch.stdin.Close()
		if err := ch.cmd.Wait(); err != nil {
			t.Fatalf("the surviving worker %s: %v", node, err)
		}
	}

	var dups int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM worker_test_dups`).Scan(&dups); err != nil || dups != 0 {
		t.Fatalf("%d jobs succeeded twice (%v)", dups, err)
	}
	var positions []int64
	for i, r := range res {
		info := get(t, q, r.JobID)
		wantAttempts := 1
		if i == victim {
			wantAttempts = 2
		}
		if info.Status != queue.StatusSucceeded || info.Attempts != wantAttempts {
			t.Errorf("job %d: status %s after %d attempts, want succeeded after %d", i, info.Status, info.Attempts, wantAttempts)
		}
		if info.Chain == nil {
			t.Fatalf("job %d has no chain entry", i)
		}
		if reason := queue.VerifyEntry(r.JobID, info.Chain); reason != "" {
			t.Errorf("job %d: chain entry does not verify: %s", i, reason)
		}
		positions = append(positions, info.Chain.Pos)
	}
	slices.Sort(positions)
	for i, p := range positions {
		if p != int64(i) {
			t.Fatalf("chain positions %v, want 0..%d", positions, n-1)
		}
	}
	var victimNode string
	var victimAttempt int
	if err := db.Pool.QueryRow(ctx, `SELECT node, attempt FROM worker_test_runs WHERE job_id = $1`, res[victim].JobID).Scan(&victimNode, &victimAttempt); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s in the middle of job %d; %s ran it again as attempt %d after its lease expired", killed, victim, victimNode, victimAttempt)
	if victimNode == killed || victimAttempt != 2 {
		t.Fatalf("the killed job succeeded on %s in attempt %d; want the survivor, attempt 2", victimNode, victimAttempt)
	}
}
