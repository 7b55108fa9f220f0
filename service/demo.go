package service

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/store/sqlite"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// DemoDefaults are what `ordo serve --demo` turns on where the
// configuration says nothing (config.Source.Defaults): ordo as it is
// meant to be seen, with HLC reads (phase 3 of the guide, so the legacy
// table still gets every job and the demo's database can go back to
// legacy mode), verification on dequeue, and signed checkpoints, so that
// jobs have proofs. keyFile is the signing key (DemoSigningKey).
func DemoDefaults(keyFile string) []config.Override {
	const origin = "demo default"
	return []config.Override{
		{Key: "Scheduler:Queue:Hlc:EnableHlcOrdering", Value: true, Origin: origin},
		{Key: "Scheduler:Queue:Hlc:DualWriteMode", Value: true, Origin: origin},
		{Key: "Scheduler:Queue:Hlc:VerifyOnDequeue", Value: true, Origin: origin},
		{Key: "Ordo:Audit:SigningKeyFile", Value: keyFile, Origin: origin},
		// A newcomer opening a job soon after the start sees its proof.
		{Key: "Ordo:Audit:CheckpointInterval", Value: DemoCheckpointInterval.String(), Origin: origin},
	}
}

// DemoCheckpointInterval is how often the demo signs checkpoints.
const DemoCheckpointInterval = 2 * time.Second

// DemoKeyName is the name in the demo's signing key (and so in its
// checkpoints' signature lines).
const DemoKeyName = "ordo-demo"

// DemoSigningKey returns the demo's signing key file for the database at
// dbURL, made on first use: beside a SQLite file (ordo.db.demo.key), so
// that the checkpoints of one demo database are all signed by one key
// across restarts, and in the user's configuration directory for other
// databases. The file is the owner's only (0600).
func DemoSigningKey(dbURL string) (string, error) {
	var path string
	if file, ok := sqlite.PathOf(dbURL); ok && file != "" && file != ":memory:" {
		path = file + ".demo.key"
	} else {
		dir, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("demo signing key: %w (set Ordo:Audit:SigningKeyFile)", err)
		}
		path = filepath.Join(dir, "ordo", "demo.key")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("demo signing key: %w", err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil // an existing key is kept, so a second demo reuses it
	}
	priv, _, err := audit.GenerateKey(rand.Reader, DemoKeyName)
	if err != nil {
		return "", err
	}
	// Written whole to a temporary file, then linked into place: a demo
	// starting at the same moment never reads a half-written key, and a
	// crash never leaves an empty one. The first link wins.
	f, err := os.CreateTemp(filepath.Dir(path), ".demo-key-*")
	if err != nil {
		return "", fmt.Errorf("demo signing key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("demo signing key: %w", err)
	}
	_, err = f.WriteString(priv + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("demo signing key: %w", err)
	}
	return path, nil
}

// DemoPeerSuffix names the demo's second node: this node's id and the
// suffix ("node-1" and "node-1-peer").
const DemoPeerSuffix = "-peer"

// DemoPeerNodeID is the node id of the demo's second node.
func DemoPeerNodeID(node string) string {
	if id := node + DemoPeerSuffix; hlc.ValidateNodeID(id) == nil {
		return id
	}
	return "demo" + DemoPeerSuffix
}

// runDemo enqueues noop jobs at Ordo:Demo:Rate per second, across the
// demo tenants in turn (two partitions each), until ctx ends. Every other
// job is enqueued by a second node in this process, with its own clock
// and its own database handle, as another process would, so the chains
// show how two nodes' timestamps interleave.
func (s *Service) runDemo(ctx context.Context, d config.Demo) {
	interval := time.Duration(float64(time.Second) / d.Rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
	var peer *queue.Queue
	var err error
	if path, ok := sqlite.PathOf(s.cfg.Load().Ordo.Database.Url); ok && path == ":memory:" {
		// Another handle on :memory: is another, empty database.
		err = errors.New("an in-memory database cannot be shared with a second node")
	} else {
		peer, err = s.openDemoPeer(ctx)
	}
	if err != nil {
		s.log.Warn("demo: the second node did not start; this node enqueues every job", "error", err)
	} else {
		defer peer.Close()
	}
	run := time.Now().UTC().Format(time.RFC3339Nano) // distinguishes this run's jobs from an earlier run's
	s.log.Info("demo: enqueuing sample jobs", "rate_per_second", d.Rate, "tenants", d.Tenants)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		payload, _ := json.Marshal(map[string]any{"demo": n, "run": run})
		j := queue.Job{
			TenantID:     d.Tenants[n%len(d.Tenants)],
			PartitionKey: []string{"", "p1"}[(n/len(d.Tenants))%2],
			Kind:         KindNoop,
			Payload:      payload,
		}
		q := s.q
		// Each node enqueues one round of every tenant and partition in
		// turn, so that every chain gets both nodes' timestamps.
		if peer != nil && (n/(2*len(d.Tenants)))%2 == 1 {
			// The peer follows this node's mode, which a reload may change.
			if o := s.q.Options(); o != peer.Options() {
				if err := peer.SetOptions(ctx, o); err != nil {
					s.log.Warn("demo: the second node refused the new options", "error", err)
				}
			}
			q = peer
		}
		if _, err := q.Enqueue(ctx, j); err != nil && ctx.Err() == nil {
			s.log.Warn("demo: enqueue failed", "error", err, "node", q.Clock().NodeID())
		}
	}
}

// openDemoPeer opens the demo's second node on this node's database.
func (s *Service) openDemoPeer(ctx context.Context) (*queue.Queue, error) {
	cfg := s.cfg.Load()
	db, err := store.Open(ctx, cfg.Ordo.Database.Url)
	if err != nil {
		return nil, err
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: DemoPeerNodeID(cfg.Ordo.NodeId), Wall: s.opts.Wall, Store: db.HLCState()})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	// Reconciling between read sides is this node's work, not the peer's.
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: s.q.Options(), SkipReconcile: true, Now: s.q.Now,
		Logger: s.log.With("demo_node", clock.NodeID()), MaxPayloadBytes: cfg.Ordo.Http.MaxPayloadBytes})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return q, nil
}
