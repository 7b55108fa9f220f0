package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSystem is River on one of its drivers (TTx is the driver's
// transaction type): riverpgxv5 on PostgreSQL, in the public schema, or
// riversqlite on a SQLite file (sqlite.go). Everything River does is the
// same on both; only opening, counting and closing the database differ.
type riverSystem[TTx any] struct {
	driver    riverdriver.Driver[TTx]
	client    *river.Client[TTx] // insert-only until start
	subEnd    func()
	label     string // how the settings line names this River
	countDone func(ctx context.Context) (int, error)
	closeDB   func()
}

// quietLogger discards River's logs where no one collects its errors.
var quietLogger = errorLogger(nil)

// completedSQL counts River's completed jobs, on either database.
const completedSQL = "SELECT count(*) FROM river_job WHERE state = 'completed'"

// migrateRiverWith creates River's schema through driver.
func migrateRiverWith[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quietLogger})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: migrating up: %w", err)
	}
	return nil
}

func migrateRiver(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrateRiverWith(ctx, riverpgxv5.New(pool))
}

// newRiverSystem makes River's insert-only client on driver.
func newRiverSystem[TTx any](driver riverdriver.Driver[TTx], label string, countDone func(context.Context) (int, error),
	closeDB func()) (*riverSystem[TTx], error) {
	client, err := river.NewClient(driver, &river.Config{Logger: quietLogger})
	if err != nil {
		closeDB()
		return nil, err
	}
	return &riverSystem[TTx]{driver: driver, client: client, label: label, countDone: countDone, closeDB: closeDB}, nil
}

func openRiver(ctx context.Context, url string) (system, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	countDone := func(ctx context.Context) (int, error) {
		var n int
		err := pool.QueryRow(ctx, completedSQL).Scan(&n)
		return n, err
	}
	return newRiverSystem(riverpgxv5.New(pool), "river", countDone, pool.Close)
}

func (s *riverSystem[TTx]) insertBatch(ctx context.Context, jobs []benchArgs) error {
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

func (s *riverSystem[TTx]) insert(ctx context.Context, job benchArgs) error {
	_, err := s.client.Insert(ctx, job, nil)
	return err
}

func (s *riverSystem[TTx]) settings(wc workConfig) string {
	return fmt.Sprintf("%s: Queues{default: {MaxWorkers: %d}}, FetchCooldown %v, FetchPollInterval %v, completion seen via Subscribe(EventKindJobCompleted)",
		s.label, wc.MaxWorkers, wc.FetchCooldown, wc.PollInterval)
}

func (s *riverSystem[TTx]) start(ctx context.Context, wc workConfig, h hooks) error {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[benchArgs]) error {
		if h.onStart != nil {
			h.onStart(job.Args)
		}
		return nil
	}))
	cfg := &river.Config{
		Logger:            errorLogger(h.onError),
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: wc.MaxWorkers}},
		FetchCooldown:     wc.FetchCooldown,
		FetchPollInterval: wc.PollInterval,
	}
	if wc.Retention > 0 {
		cfg.CompletedJobRetentionPeriod = wc.Retention
		cfg.CancelledJobRetentionPeriod = wc.Retention
		cfg.DiscardedJobRetentionPeriod = wc.Retention
	}
	client, err := river.NewClient(s.driver, cfg)
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
func (s *riverSystem[TTx]) fetch(ctx context.Context, limit int) (int, error) {
	res, err := s.driver.GetExecutor().JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{
		ClientID: "bench", MaxAttemptedBy: 100, MaxToLock: limit, Queue: river.QueueDefault,
	})
	if err != nil {
		return 0, err
	}
	return len(res.Jobs), nil
}

func (s *riverSystem[TTx]) completed(ctx context.Context) (int, error) { return s.countDone(ctx) }

func (s *riverSystem[TTx]) stop(ctx context.Context) error {
	err := s.client.Stop(ctx)
	if s.subEnd != nil {
		s.subEnd()
		s.subEnd = nil
	}
	return err
}

func (s *riverSystem[TTx]) close() { s.closeDB() }
