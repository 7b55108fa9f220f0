package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
	"github.com/ordo-sched/ordo/worker"
)

// benchTenant is the one tenant every ordo job belongs to.
const benchTenant = "bench"

// ordoHlcOnly is the migration guide's end state, every job chained:
// HLC reads, dual-write off.
var ordoHlcOnly = queue.Options{EnableHlcOrdering: true}

// ordoSystem is ordo on PostgreSQL (schema scheduler) or on a SQLite
// file (url sqlite:PATH).
type ordoSystem struct {
	q      *queue.Queue
	client *worker.Client
}

// openOrdo opens ordo at url as node in mode opts.
func openOrdo(ctx context.Context, url, node string, opts queue.Options) (*ordoSystem, error) {
	q, err := ordo.Open(ctx, url, ordo.Config{Node: node, Hlc: opts})
	if err != nil {
		return nil, err
	}
	return &ordoSystem{q: q}, nil
}

func ordoJob(a benchArgs) (queue.Job, error) {
	return worker.NewJob(benchTenant, a, nil)
}

func (s *ordoSystem) insertBatch(ctx context.Context, jobs []benchArgs) error {
	batch := make([]queue.Job, len(jobs))
	for i, a := range jobs {
		j, err := ordoJob(a)
		if err != nil {
			return err
		}
		batch[i] = j
	}
	res, err := s.q.EnqueueMany(ctx, batch)
	if err != nil {
		return err
	}
	return checkFresh(res)
}

func (s *ordoSystem) insert(ctx context.Context, a benchArgs) error {
	j, err := ordoJob(a)
	if err != nil {
		return err
	}
	res, err := s.q.Enqueue(ctx, j)
	if err != nil {
		return err
	}
	return checkFresh([]queue.EnqueueResult{res})
}

// checkFresh fails if a job was deduplicated: every bench job is new, and
// a deduplicated one would be counted without being written.
func checkFresh(res []queue.EnqueueResult) error {
	for _, r := range res {
		if r.Deduplicated {
			return fmt.Errorf("ordo: job %s deduplicated; bench payloads must be unique", r.JobID)
		}
	}
	return nil
}

func (s *ordoSystem) settings(wc workConfig) string {
	return fmt.Sprintf("ordo: worker.Config{MaxWorkers: %d, FetchCooldown: %v, PollInterval: %v, Queues{default: {Tenants: TenantsFIFO}}}, mode %s, completion seen via OnEvent(EventJobSucceeded)",
		wc.MaxWorkers, wc.FetchCooldown, wc.PollInterval, s.q.Mode())
}

func (s *ordoSystem) start(ctx context.Context, wc workConfig, h hooks) error {
	workers := worker.NewWorkers()
	worker.AddWorker(workers, worker.WorkFunc[benchArgs](func(ctx context.Context, job *worker.Job[benchArgs]) error {
		if h.onStart != nil {
			h.onStart(job.Args)
		}
		return nil
	}))
	cfg := worker.Config{
		Workers:       workers,
		Logger:        errorLogger(h.onError),
		MaxWorkers:    wc.MaxWorkers,
		FetchCooldown: wc.FetchCooldown,
		PollInterval:  wc.PollInterval,
		// One tenant: the fair round-robin has nothing to share out.
		Queues: map[string]worker.QueueConfig{worker.DefaultQueue: {MaxWorkers: wc.MaxWorkers, Tenants: worker.TenantsFIFO}},
	}
	if wc.Retention > 0 {
		cfg.Retention = queue.Retention{Succeeded: wc.Retention, Cancelled: wc.Retention, Failed: wc.Retention}
	}
	if h.onComplete != nil {
		cfg.OnEvent = func(e worker.Event) {
			if e.Type == worker.EventJobSucceeded {
				h.onComplete()
			}
		}
	}
	client, err := worker.NewClient(s.q, cfg)
	if err != nil {
		return err
	}
	s.client = client
	return client.Start(ctx)
}

func (s *ordoSystem) fetch(ctx context.Context, limit int) (int, error) {
	leases, err := s.q.Dequeue(ctx, queue.DequeueOptions{Limit: limit, LeaseFor: time.Hour})
	return len(leases), err
}

func (s *ordoSystem) completed(ctx context.Context) (int, error) {
	if db, ok := s.q.Backend().(*sqlite.DB); ok {
		return ordoSQLiteCompleted(ctx, db)
	}
	var n int
	err := s.pool().QueryRow(ctx, "SELECT count(*) FROM scheduler.job_state WHERE status = 'succeeded'").Scan(&n)
	return n, err
}

// pool is the queue's own connection pool.
func (s *ordoSystem) pool() *pgxpool.Pool { return s.q.Backend().(*postgres.DB).Pool }

func (s *ordoSystem) stop(ctx context.Context) error { return s.client.Stop(ctx) }

func (s *ordoSystem) close() { _ = s.q.Close() }
