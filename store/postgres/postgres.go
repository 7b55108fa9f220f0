// Package postgres is ordo's PostgreSQL backend, registered for
// postgres:// and postgresql:// URLs: the whole driver.Driver (queue
// storage, reconciliation, listing, operator state, tokens, leadership,
// the audit store, HLC state and migrations) on one connection pool, with
// LISTEN/NOTIFY for cross-process wakeups.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/migrations"
)

// DB is an open PostgreSQL backend.
type DB struct {
	Pool  *pgxpool.Pool
	std   *sql.DB // for goose, which speaks database/sql
	stats statsWatch
	heads *headCache
	// life ends at Close: listeners hold a connection each, and the pool
	// does not close while one is held, so Close ends them first.
	life      context.Context
	endLife   context.CancelFunc
	listeners sync.WaitGroup
	// lifeMu orders Listen's Add before Close's Wait (a WaitGroup must
	// not be added to while it is being waited on from zero).
	lifeMu sync.Mutex
	closed bool
}

// Open connects to the database at url (postgres:// or postgresql://) and
// checks that it answers.
func Open(ctx context.Context, url string) (*DB, error) {
	if !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://") {
		return nil, fmt.Errorf("postgres: database URL must start with postgres:// or postgresql://, got %q", redact(url))
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing database URL %q: %w", redact(url), err)
	}
	cfg.AfterConnect = registerUUID
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting to %s: %w", redact(url), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %w", redact(url), err)
	}
	db := &DB{Pool: pool, std: stdlib.OpenDBFromPool(pool), stats: statsWatch{refreshed: make(chan struct{}, 1)}}
	db.life, db.endLife = context.WithCancel(context.Background())
	db.heads = newHeadCache(db.writeHeads)
	return db, nil
}

func init() {
	driver.Register(driver.Backend{
		Schemes: []string{"postgres", "postgresql"},
		Usage:   "postgres://...",
		Open: func(ctx context.Context, url string) (driver.Driver, error) {
			db, err := Open(ctx, url)
			if err != nil {
				return nil, err
			}
			return db, nil
		},
	})
}

// Capabilities implements driver.Driver: PostgreSQL has every optional
// part.
func (db *DB) Capabilities() driver.Capabilities {
	return driver.Capabilities{Listen: true, Leadership: true}
}

// redact hides a password in a URL before it reaches an error message.
func redact(url string) string {
	at := strings.LastIndexByte(url, '@')
	scheme := strings.Index(url, "://")
	if at < 0 || scheme < 0 {
		return url
	}
	userinfo := url[scheme+3 : at]
	if colon := strings.IndexByte(userinfo, ':'); colon >= 0 {
		return url[:scheme+3] + userinfo[:colon] + ":xxxxx" + url[at:]
	}
	return url
}

// Close releases every connection.
func (db *DB) Close() error {
	// Heads owed to chain_heads go first. If that fails the rows name
	// older entries of their chains, which check 9 allows, and the next
	// append to each chain writes it: not worth failing Close for.
	_ = db.heads.close()
	db.lifeMu.Lock()
	db.closed = true
	db.lifeMu.Unlock()
	db.endLife()
	db.listeners.Wait()
	err := db.std.Close()
	db.Pool.Close()
	return err
}

// Migrate applies pending migrations.
func (db *DB) Migrate(ctx context.Context) ([]migrations.Applied, error) {
	return migrations.Up(ctx, migrations.Postgres, db.std)
}

// MigrationStatus lists the embedded migrations and which are applied.
func (db *DB) MigrationStatus(ctx context.Context) ([]migrations.State, error) {
	return migrations.Status(ctx, migrations.Postgres, db.std)
}

// HLCState returns the HLC state store kept in scheduler.hlc_state.
func (db *DB) HLCState() hlc.StateStore { return hlcState{db} }

type hlcState struct{ db *DB }

func (s hlcState) Load(ctx context.Context, node string) (int64, error) {
	var bound int64
	err := s.db.Pool.QueryRow(ctx, `SELECT upper_bound_ms FROM scheduler.hlc_state WHERE node_id = $1`, node).Scan(&bound)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: reading HLC state of node %s: %w", node, err)
	}
	return bound, nil
}

// Save never lowers the stored bound: GREATEST makes a stale writer lose.
// BoundWrittenWithData reports false: on PostgreSQL the clock saves its
// bound on a connection of its own, ahead of the timestamps it covers.
func (hlcState) BoundWrittenWithData() bool { return false }

func (s hlcState) Save(ctx context.Context, node string, bound int64) error {
	_, err := s.db.Pool.Exec(ctx, `
		INSERT INTO scheduler.hlc_state (node_id, upper_bound_ms, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (node_id) DO UPDATE
		SET upper_bound_ms = GREATEST(scheduler.hlc_state.upper_bound_ms, EXCLUDED.upper_bound_ms), updated_at = now()`,
		node, bound)
	if err != nil {
		return fmt.Errorf("postgres: saving HLC state of node %s: %w", node, err)
	}
	return nil
}
