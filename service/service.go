// Package service is `ordo serve`: the queue of one node behind a JSON
// HTTP API (docs/api.md), with Prometheus metrics, health and readiness
// checks, the built-in handlers (http, noop), the demo trickle, and live
// reconfiguration of the guide's Hlc options.
//
//	cfg, err := config.Load(config.ForCLI("ordo.yaml", "", ""))
//	svc, err := service.New(ctx, cfg, service.Options{})
//	err = svc.Run(ctx) // until ctx ends, then a graceful shutdown
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/authguard"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/worker"
)

// Options are what a Service takes besides its configuration; all are
// optional.
type Options struct {
	// Logger receives the service's log; default a handler on stderr in
	// the configured Ordo:Log format and level.
	Logger *slog.Logger
	// LogOutput is where the default logger writes; default os.Stderr.
	LogOutput io.Writer
	// Wall is the wall clock of the node's HLC and of everything the queue
	// stores (run-at, leases); default the system clock. Tests inject an
	// hlc.ManualClock.
	Wall hlc.WallClock
	// Registry receives the metrics /metrics serves; default a new one.
	Registry *prometheus.Registry
	// Workers registers handlers besides the built-in http and noop.
	Workers func(w *worker.Workers) error
	// WorkerConfig adjusts the worker client's configuration after it is
	// derived from Ordo:Worker (tests shorten its poll interval).
	WorkerConfig func(c *worker.Config)
	// HTTPClient makes the http kind's requests; default a client with
	// Ordo:Worker:HttpKind:Timeout that checks redirects against the
	// allow-list.
	HTTPClient *http.Client
	// Reload, when set, is where the configuration came from: Run watches
	// its file (Ordo:Reload:PollInterval) and reloads on ReloadSignal.
	Reload *config.Source
	// ReloadSignal triggers a reload (SIGHUP in `ordo serve`).
	ReloadSignal <-chan struct{}
	// OnReload, if set, is called after every reload attempt with its
	// outcome (tests wait on it).
	OnReload func(ReloadResult)
	// Started, if set, is called by Start once the service listens, with
	// the URL it serves.
	Started func(url string)
	// OnCheckpoint, if set, is called after the checkpointer (Ordo:Audit)
	// has stored each signed checkpoint. It exists for tests, which
	// otherwise could only poll the database to learn that a checkpoint
	// was written; nil (the default) leaves the checkpointer writing to
	// the store directly.
	OnCheckpoint func(*driver.Checkpoint)
	// OnWitnessSubmission, if set, is called after each submission of a
	// checkpoint to a witness of Ordo:Audit:Witnesses, with the witness's
	// URL and the result (audit.WitnessResults), as the metric counts it.
	// It exists for tests, which otherwise could only poll /metrics.
	OnWitnessSubmission func(witness, result string)
	// OnLongPollWait, if set, is called each time a long-polling dequeue
	// found nothing and begins to wait (tests enqueue once it has).
	OnLongPollWait func()
	// OnVerifyRound, if set, is called after every round of the periodic
	// verification (Ordo:Audit:VerifyInterval) has been recorded, with
	// its outcome (tests wait on it).
	OnVerifyRound func(*audit.Round, error)
}

// Service is one running node.
type Service struct {
	cfg     atomic.Pointer[config.Config] // in force: live keys as reloaded, others as started
	opts    Options
	log     *slog.Logger
	db      store.DB
	q       *queue.Queue
	client  *worker.Client
	reg     *prometheus.Registry
	metrics *serviceMetrics
	auth    *authenticator
	hosts   atomic.Pointer[hostList] // the http kind's allow-list
	audit   *audit.PublicKey         // verifies checkpoint signatures
	signer  *audit.PrivateKey        // signs checkpoints and snapshots
	tiles   *audit.Tiles             // the chains as tlog-tiles logs (tlog.go)
	// batchSlots holds one token per batch enqueue being decoded or
	// written (Ordo:Http:MaxConcurrentBatches).
	batchSlots chan struct{}
	// guard counts failed authentications per client address, for the
	// API and the dashboard's login alike.
	guard   *authguard.Guard
	handler http.Handler

	reloadMu sync.Mutex // one reload at a time

	shutdownOnce sync.Once
	wake         *wakeups // for long-polling dequeues
	wakeCancel   context.CancelFunc
	shutdownErr  error
	closeOnce    sync.Once

	startedAt time.Time // when Start ran, for node reports

	mu       sync.Mutex
	started  bool
	srv      *http.Server
	ln       net.Listener
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
	serveErr chan error
}

// New opens the database (applying migrations unless
// Ordo:Database:AutoMigrate is false), starts the node's clock, builds the
// queue in the configured mode (bringing jobs stranded by an earlier mode
// over, see queue.New), the worker client and the HTTP handler. Start or
// Run puts them to work; Close releases them if neither runs.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{opts: opts, reg: opts.Registry, batchSlots: make(chan struct{}, cfg.Ordo.Http.MaxConcurrentBatches), wake: newWakeups()}
	s.cfg.Store(cfg)
	s.guard = authguard.New(cfg.Ordo.Http.AuthFailuresPerMinute, time.Minute, s.now)
	s.log = opts.Logger
	if s.log == nil {
		s.log = newLogger(cfg.Ordo.Log, opts.LogOutput)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	db, err := store.Open(ctx, cfg.Ordo.Database.Url)
	if err != nil {
		return nil, err
	}
	s.db = db
	ok := false
	defer func() {
		if !ok {
			s.closeDB()
		}
	}()
	if cfg.Ordo.Database.AutoMigrate {
		applied, err := db.Migrate(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range applied {
			s.log.Info("applied migration", "name", a.Name, "duration", a.Duration)
		}
	} else if pending, err := s.pendingMigrations(ctx); err != nil {
		return nil, err
	} else if pending {
		return nil, errors.New("the database schema is behind this binary and Ordo:Database:AutoMigrate is false: run `ordo migrate` first")
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: cfg.Ordo.NodeId, Wall: opts.Wall, Store: db.HLCState()})
	if err != nil {
		return nil, err
	}
	qm, err := metrics.New(s.reg)
	if err != nil {
		return nil, fmt.Errorf("registering the queue's metrics: %w", err)
	}
	qc := queue.Config{
		Backend: db, Clock: clock, Options: cfg.Scheduler.Queue.Hlc.QueueOptions(), Metrics: qm, Logger: s.log,
		MaxPayloadBytes: cfg.Ordo.Http.MaxPayloadBytes,
	}
	if opts.Wall != nil {
		wall := opts.Wall
		qc.Now = func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
	}
	if err := s.loadKeys(cfg.Ordo.Audit); err != nil {
		return nil, err
	}
	if cfg.Ordo.Audit.SnapshotOnDequeue {
		snap := &audit.Snapshotter{Store: db.AuditStore(), Key: s.signer, Clock: clock, Metrics: qm, Now: qc.Now}
		qc.AfterDequeue = func(ctx context.Context, leases []queue.Lease) {
			if _, err := snap.SnapshotBatch(ctx, leases); err != nil {
				s.log.Error("signing the snapshot of a dequeued batch failed", "error", err, "jobs", len(leases))
			}
		}
	}
	q, err := queue.New(ctx, qc)
	if err != nil {
		return nil, err
	}
	s.q = q
	s.exposeWitnessSeries(cfg)
	s.hosts.Store(newHostList(cfg.Ordo.Worker.HttpKind.AllowedHosts))
	s.auth = newAuthenticator(cfg.Ordo.Auth.Tokens, db, s.now)
	if s.metrics, err = newServiceMetrics(s); err != nil {
		return nil, err
	}
	if cfg.Ordo.Worker.Enabled {
		if s.client, err = s.newWorkerClient(cfg); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	ok = true
	// Long polls wait on it whether the service was started or only its
	// Handler is served.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	s.wakeCancel = wcancel
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		s.wake.run(wctx, s.q, s.log.Warn)
	}()
	return s, nil
}

// loadKeys reads Ordo:Audit's keys.
func (s *Service) loadKeys(a config.Audit) error {
	if f := a.SigningKeyFile; f != "" {
		var err error
		if s.signer, err = readKeyFile("SigningKeyFile", f, audit.ParsePrivateKey); err != nil {
			return err
		}
		s.audit = s.signer.Public()
	}
	if f := a.PublicKeyFile; f != "" {
		var err error
		if s.audit, err = readKeyFile("PublicKeyFile", f, audit.ParsePublicKey); err != nil {
			return err
		}
	}
	return nil
}

// readKeyFile reads the key in path, the value of Ordo:Audit:<setting>,
// with parse; its errors name the setting, so the operator knows which
// line of the configuration to fix.
func readKeyFile[K any](setting, path string, parse func(string) (K, error)) (K, error) {
	var none K
	text, err := os.ReadFile(path)
	if err != nil {
		return none, fmt.Errorf("Ordo:Audit:%s: %w", setting, err)
	}
	k, err := parse(strings.TrimSpace(string(text)))
	if err != nil {
		return none, fmt.Errorf("Ordo:Audit:%s %s: %w", setting, path, err)
	}
	return k, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated
	ho := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// Config returns the configuration in force.
func (s *Service) Config() *config.Config { return s.cfg.Load() }

// Queue returns the node's queue.
func (s *Service) Queue() *queue.Queue { return s.q }

// Handler returns the HTTP handler: the API, /metrics, /healthz, /readyz,
// and the dashboard at /.
func (s *Service) Handler() http.Handler { return s.handler }

// Registry returns the metrics registry /metrics serves.
func (s *Service) Registry() *prometheus.Registry { return s.reg }

func (s *Service) pendingMigrations(ctx context.Context) (bool, error) {
	states, err := s.db.MigrationStatus(ctx)
	if err != nil {
		return false, err
	}
	for _, st := range states {
		if !st.Applied {
			return true, nil
		}
	}
	return false, nil
}

// Start listens on Ordo:Http:Listen, serves, starts the worker client, the
// demo trickle if Ordo:Demo:Enabled, and the configuration watcher if
// Options.Reload is set, and returns.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("service: already started")
	}
	cfg := s.cfg.Load()
	ln, err := net.Listen("tcp", cfg.Ordo.Http.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s (Ordo:Http:Listen): %w", cfg.Ordo.Http.Listen, err)
	}
	s.started, s.ln = true, ln
	// Every phase of a connection is bounded, so slow or idle clients
	// cannot hold descriptors (issue 14: 287 held connections locked new
	// clients out).
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: cfg.Ordo.Http.ReadHeaderTimeout,
		ReadTimeout:       cfg.Ordo.Http.ReadTimeout,
		WriteTimeout:      cfg.Ordo.Http.WriteTimeout,
		IdleTimeout:       cfg.Ordo.Http.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.serveErr = make(chan error, 1)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.serveErr <- err
	}()
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bgCancel = cancel
	if s.client != nil {
		if err := s.client.Start(bg); err != nil {
			return err
		}
	}
	if s.signer != nil && cfg.Ordo.Audit.CheckpointInterval > 0 {
		cp := &audit.Checkpointer{Store: s.db.AuditStore(), Key: s.signer, Holder: cfg.Ordo.NodeId,
			Interval: cfg.Ordo.Audit.CheckpointInterval, Logger: s.log, Leader: s.db}
		if err := s.configureWitnesses(cp, cfg); err != nil {
			return err
		}
		if s.opts.OnCheckpoint != nil {
			cp.Store = checkpointHook{cp.Store, s.opts.OnCheckpoint}
		}
		if wall := s.opts.Wall; wall != nil {
			cp.Now = func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
		}
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			if err := cp.Run(bg); err != nil && bg.Err() == nil {
				s.log.Error("the checkpointer stopped", "error", err)
			}
		}()
	}
	s.startVerifier(bg, cfg)
	s.startLogPartitions(bg, cfg)
	s.startedAt = s.now()
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		s.reportNode(bg) // for the dashboard's nodes page
	}()
	if cfg.Ordo.Demo.Enabled {
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			s.runDemo(bg, cfg.Ordo.Demo)
		}()
	}
	if s.opts.Reload != nil {
		w := &config.Watcher{Source: *s.opts.Reload, Interval: cfg.Ordo.Reload.PollInterval, OnReload: func(c *config.Config, err error) {
			s.applyReload(bg, c, err)
		}}
		s.bgWG.Add(1)
		go func() {
			defer s.bgWG.Done()
			w.Run(bg, cfg, s.opts.ReloadSignal)
		}()
	}
	s.log.Info("ordo serving", "url", s.URL(), "node", cfg.Ordo.NodeId, "mode", s.q.Mode().String(),
		"database", config.RedactURL(cfg.Ordo.Database.Url), "workers", s.client != nil, "demo", cfg.Ordo.Demo.Enabled)
	if s.opts.Started != nil {
		s.opts.Started(s.URL())
	}
	return nil
}

// checkpointHook is an audit store that calls after once each checkpoint
// is stored (Options.OnCheckpoint).
type checkpointHook struct {
	driver.AuditStore
	after func(*driver.Checkpoint)
}

func (h checkpointHook) InsertCheckpoint(ctx context.Context, c *driver.Checkpoint) error {
	err := h.AuditStore.InsertCheckpoint(ctx, c)
	if err == nil {
		h.after(c)
	}
	return err
}

// Addr returns the address the service listens on (after Start).
func (s *Service) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL returns http://ADDR of the listener (after Start).
func (s *Service) URL() string {
	var addr net.Addr
	if s.ln != nil {
		addr = s.ln.Addr()
	}
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Run starts the service and serves until ctx ends, then shuts down
// gracefully within Ordo:Http:ShutdownTimeout.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		_ = s.Shutdown(context.Background())
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
		s.serveErr <- err // Shutdown reads it again
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Load().Ordo.Http.ShutdownTimeout)
	defer cancel()
	return errors.Join(err, s.Shutdown(sctx))
}

// Shutdown stops accepting requests and waits for those in flight, stops
// the demo and the watcher, stops the worker client (running jobs finish,
// or go back to the queue when ctx ends), and closes the database.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Service) shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, cancel := s.srv, s.bgCancel
	s.mu.Unlock()
	var errs []error
	s.wake.shutdown()
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the HTTP server: %w", err))
		}
		if err := <-s.serveErr; err != nil {
			errs = append(errs, err)
		}
	}
	// The workers stop first, gracefully, within ctx: the client runs on
	// the background context, and cancelling that first would make it
	// stop at once and hand its running jobs back instead.
	if s.client != nil {
		if err := s.client.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if cancel != nil {
		cancel()
	}
	s.wakeCancel()
	s.bgWG.Wait()
	s.closeDB()
	s.log.Info("ordo stopped")
	return errors.Join(errs...)
}

// Close releases a service that was never started.
func (s *Service) Close() error { return s.Shutdown(context.Background()) }

func (s *Service) closeDB() {
	s.closeOnce.Do(func() {
		if s.q != nil {
			_ = s.q.Close() // closes the backend
		} else if s.db != nil {
			_ = s.db.Close()
		}
	})
}
