package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", the one ordo's SQLite backend uses

	"github.com/ordo-sched/ordo/store/sqlite"
)

// sqliteScheme starts the "URL" of a SQLite system-run: sqlite:PATH, as
// ordo.Open takes it; River opens PATH with the same DSN settings.
const sqliteScheme = "sqlite:"

// sqliteFile is the database file of a SQLite system-run, in a fresh
// temporary directory.
const sqliteFile = "bench.db"

// isSQLite tells whether url names a SQLite file (sqlite:PATH).
func isSQLite(url string) bool { return strings.HasPrefix(url, sqliteScheme) }

// openRiverSQLiteDB opens the file at path the way ordo's SQLite backend
// opens its own (store/sqlite.Open): WAL journal, synchronous=NORMAL,
// busy_timeout 10 s, foreign keys on, BEGIN IMMEDIATE, and one connection,
// which riversqlite's documentation also recommends (SetMaxOpenConns(1)).
func openRiverSQLiteDB(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// newSQLiteFile makes a fresh temporary directory and returns the
// sqlite:PATH of a (not yet created) database file in it, and a function
// removing the directory.
func newSQLiteFile() (string, func(), error) {
	dir, err := os.MkdirTemp("", "ordo-bench-sqlite-")
	if err != nil {
		return "", nil, err
	}
	return sqliteScheme + filepath.Join(dir, sqliteFile), func() { _ = os.RemoveAll(dir) }, nil
}

func migrateRiverSQLite(ctx context.Context, url string) error {
	db, err := openRiverSQLiteDB(ctx, strings.TrimPrefix(url, sqliteScheme))
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: quietLogger})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: migrating up: %w", err)
	}
	return nil
}

// riverSQLiteSystem is River on its SQLite driver (riversqlite, over
// database/sql and modernc.org/sqlite).
type riverSQLiteSystem struct {
	db     *sql.DB
	client *river.Client[*sql.Tx] // insert-only until start
	subEnd func()
}

func openRiverSQLite(ctx context.Context, url string) (*riverSQLiteSystem, error) {
	db, err := openRiverSQLiteDB(ctx, strings.TrimPrefix(url, sqliteScheme))
	if err != nil {
		return nil, err
	}
	client, err := river.NewClient(riversqlite.New(db), &river.Config{Logger: quietLogger})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &riverSQLiteSystem{db: db, client: client}, nil
}

func (s *riverSQLiteSystem) insertBatch(ctx context.Context, jobs []benchArgs) error {
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

func (s *riverSQLiteSystem) insert(ctx context.Context, job benchArgs) error {
	_, err := s.client.Insert(ctx, job, nil)
	return err
}

func (s *riverSQLiteSystem) settings(wc workConfig) string {
	return fmt.Sprintf("river (riversqlite, 1 connection): Queues{default: {MaxWorkers: %d}}, FetchCooldown %v, FetchPollInterval %v, completion seen via Subscribe(EventKindJobCompleted)",
		wc.MaxWorkers, wc.FetchCooldown, wc.PollInterval)
}

func (s *riverSQLiteSystem) start(ctx context.Context, wc workConfig, h hooks) error {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[benchArgs]) error {
		if h.onStart != nil {
			h.onStart(job.Args)
		}
		return nil
	}))
	client, err := river.NewClient(riversqlite.New(s.db), &river.Config{
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
		// As riverSystem.start: sized for every job of a scenario.
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
// parameters River's producer passes, as riverSystem.fetch.
func (s *riverSQLiteSystem) fetch(ctx context.Context, limit int) (int, error) {
	res, err := riversqlite.New(s.db).GetExecutor().JobGetAvailable(ctx, &riverdriver.JobGetAvailableParams{
		ClientID: "bench", MaxAttemptedBy: 100, MaxToLock: limit, Queue: river.QueueDefault,
	})
	if err != nil {
		return 0, err
	}
	return len(res.Jobs), nil
}

func (s *riverSQLiteSystem) completed(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n)
	return n, err
}

func (s *riverSQLiteSystem) stop(ctx context.Context) error {
	err := s.client.Stop(ctx)
	if s.subEnd != nil {
		s.subEnd()
		s.subEnd = nil
	}
	return err
}

func (s *riverSQLiteSystem) close() { _ = s.db.Close() }

// ordoSQLiteCompleted counts ordo's succeeded jobs in its SQLite file.
func ordoSQLiteCompleted(ctx context.Context, db *sqlite.DB) (int, error) {
	var n int
	err := db.SQL.QueryRowContext(ctx, "SELECT count(*) FROM job_state WHERE status = 'succeeded'").Scan(&n)
	return n, err
}
