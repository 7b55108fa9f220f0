// Package ordo opens a job queue by database URL: the one call a service
// needs before registering workers. The pieces it assembles live in their
// own packages: hlc (the clock), chain (hashing and links), queue (the
// queue and its modes), store (the PostgreSQL and SQLite backends) and
// worker (the handler runtime).
//
// The same code runs on the embedded default and on PostgreSQL; only the
// URL changes:
//
//	q, err := ordo.Open(ctx, "sqlite:ordo.db", ordo.Config{})
//	q, err := ordo.Open(ctx, "postgres://ordo@db.internal/ordo", ordo.Config{})
package ordo

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// Config configures Open. The zero value is usable.
type Config struct {
	// Node is this node's id in HLC timestamps; default the host name (up
	// to its first dot), as the migration guide suggests. It must be
	// stable across restarts and unique among nodes.
	Node string
	// Hlc are the guide's SchedulerHlcOptions; zero means its defaults
	// (legacy ordering, no dual-write).
	Hlc queue.Options
	// Queue tunes the queue further; its Backend, Clock and Options are
	// set by Open.
	Queue queue.Config
	// Wall is the clock's wall clock; default the system clock.
	Wall hlc.WallClock
}

// Open connects to url ("sqlite:PATH" or "postgres://..."), applies the
// schema migrations, starts this node's clock from its persisted state,
// and returns the queue. Closing the queue closes the database.
func Open(ctx context.Context, url string, cfg Config) (*queue.Queue, error) {
	node := cfg.Node
	if node == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("ordo: reading the host name for the node id: %w (set Config.Node)", err)
		}
		node, _, _ = strings.Cut(host, ".")
	}
	if err := hlc.ValidateNodeID(node); err != nil {
		return nil, fmt.Errorf("ordo: node id: %w", err)
	}
	db, err := store.OpenMigrated(ctx, url)
	if err != nil {
		return nil, err
	}
	// queue.New validates the options and sets the clock's MaxDrift.
	clock, err := hlc.New(ctx, hlc.Config{Node: node, Wall: cfg.Wall, Store: db.HLCState()})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	qc := cfg.Queue
	qc.Backend, qc.Clock, qc.Options = db, clock, cfg.Hlc
	if qc.Now == nil && cfg.Wall != nil {
		wall := cfg.Wall
		qc.Now = func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
	}
	q, err := queue.New(ctx, qc)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return q, nil
}
