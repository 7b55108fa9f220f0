package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSystem is River on its pgx v5 driver, in the public schema.
type riverSystem struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx] // insert-only until start
	subEnd func()
}

// quietLogger discards River's logs where no one collects its errors.
var quietLogger = errorLogger(nil)

func migrateRiver(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: quietLogger})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: migrating up: %w", err)
	}
	return nil
}

func openRiver(ctx context.Context, url string) (*riverSystem, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: quietLogger})
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &riverSystem{pool: pool, client: client}, nil
}

func (s *riverSystem) insertBatch(ctx context.Context, jobs []benchArgs) error {
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		params[i] = river.InsertManyParams{Args: j}
	}
	n, err := s.client.InsertManyFast(ctx, params)
	if err == nil && n != len(jobs) {
		err = fmt.Errorf("river: InsertManyFast inserted %d of %d jobs", n, len(jobs))
	}
	return err
}

func (s *riverSystem) insert(ctx context.Context, job benchArgs) error {
	_, err := s.client.Insert(ctx, job, nil)
	return err
}

func (s *riverSystem) settings(wc workConfig) string {
	return fmt.Sprintf("river: Queues{default: {MaxWorkers: %d}}, FetchCooldown %v, FetchPollInterval %v, completion seen via Subscribe(EventKindJobCompleted)",
		wc.MaxWorkers, wc.FetchCooldown, wc.PollInterval)
}

func (s *riverSystem) start(ctx context.Context, wc workConfig, h hooks) error {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[benchArgs]) error {
		if h.onStart != nil {
			h.onStart(job.Args)
		}
		return nil
	}))
	client, err := river.NewClient(riverpgxv5.New(s.pool), &river.Config{
		Logger:            errorLogger(h.onError),
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: wc.MaxWorkers}},
		FetchCooldown:     wc.FetchCooldown,
		FetchPollInterval: wc.PollInterval,
	})
	if err != nil {
		return err
	}
	s.client = client
	if h.onComplete != nil {
		// Sends that do not fit the buffer are dropped, so it is sized
		// for every job of a scenario.
		events, end := client.SubscribeConfig(&river.SubscribeConfig{
			ChanSize: 1 << 18, Kinds: []river.EventKind{river.EventKindJobCompleted},
		})
		s.subEnd = end
		go func() {
			for range events {
				h.onComplete()
			}
		}()
	}
	return client.Start(ctx)
}

// fetch runs JobGetAvailable through the driver's executor with the
// parameters River's producer passes (river v0.51.2 producer.go): the
// default queue, every kind, MaxAttemptedBy 100.
func (s *riverSystem) fetch(ctx context.Context, limit int) (int, error) {
	res, err := riverpgxv5.New(s.pool).GetExecutor().JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{
		ClientID: "bench", MaxAttemptedBy: 100, MaxToLock: limit, Queue: river.QueueDefault,
	})
	if err != nil {
		return 0, err
	}
	return len(res.Jobs), nil
}

func (s *riverSystem) completed(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n)
	return n, err
}

func (s *riverSystem) stop(ctx context.Context) error {
	err := s.client.Stop(ctx)
	if s.subEnd != nil {
		s.subEnd()
		s.subEnd = nil
	}
	return err
}

func (s *riverSystem) close() { s.pool.Close() }
