package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/queue"
)

// DefaultQueue is the client queue of kinds registered without
// KindOptions.Queue.
const DefaultQueue = "default"

// TenantPolicy says how a client queue shares its fetches between tenants.
type TenantPolicy int

const (
	// TenantsFair shares every fetch round-robin between the tenants that
	// have jobs available (queue.DequeueOptions.FairTenants), so one
	// tenant's backlog cannot starve the others. The default.
	TenantsFair TenantPolicy = iota
	// TenantsFIFO takes jobs in queue order whatever their tenant.
	TenantsFIFO
)

// QueueConfig configures one client queue: a named group of kinds with its
// own concurrency.
type QueueConfig struct {
	// MaxWorkers caps this queue's running jobs; default Config.MaxWorkers.
	MaxWorkers int
	Tenants    TenantPolicy
	// StrictPartitions runs at most one job per (tenant, partition) at a
	// time, in chain order, across all clients: a job waits until its
	// predecessor has finished, retries included. (The PostgreSQL backend
	// does not combine it with fair tenant sharing.)
	StrictPartitions bool
	// AllKinds makes this queue fetch jobs of every kind, not only those
	// registered to it. A job of a kind this client has no worker for then
	// fails at once without retry (ErrUnknownKind) instead of waiting
	// forever (and, with StrictPartitions, blocking its partition). Only
	// for a client that owns every kind in the database: with several
	// services sharing it, each would fail the others' jobs. At most one
	// queue may set it; kinds registered to other queues may then run here
	// too, under this queue's limit.
	AllKinds bool
}

// Config configures a Client. Everything is optional.
type Config struct {
	// Workers are the handlers, by kind.
	Workers *Workers
	// WorkMiddleware wraps the running of every job, the first outermost.
	WorkMiddleware []WorkMiddleware
	// InsertMiddleware wraps every insert through the client, the first
	// outermost.
	InsertMiddleware []InsertMiddleware
	// Queues configures client queues by name; DefaultQueue exists even
	// when not listed. Every KindOptions.Queue must be listed here.
	Queues map[string]QueueConfig
	// MaxWorkers caps the running jobs of the whole client; default 100.
	MaxWorkers int
	// ID names this client as lease owner and leadership holder; default
	// host-pid-random. Must be unique among running clients.
	ID string

	// LeaseFor is the length of a job's lease (at least 1s; default 30s).
	// Heartbeats renew it while the handler runs, so it bounds how long a
	// crashed worker's jobs stay stuck, not how long a job may run.
	LeaseFor time.Duration
	// HeartbeatInterval is how often a running job's lease is extended;
	// default LeaseFor/3. Must be below LeaseFor.
	HeartbeatInterval time.Duration
	// DefaultTimeout bounds an attempt of a kind that sets none; default 1
	// minute; negative for none.
	DefaultTimeout time.Duration
	// TimeoutGrace is how long a handler whose context ended (timeout,
	// lost lease) has to return before it is abandoned; default 5s.
	TimeoutGrace time.Duration

	// PollInterval is how often each queue looks for jobs without being
	// woken, which is how jobs whose RunAt comes, and jobs enqueued by
	// processes it hears nothing from, are found; default 1s.
	PollInterval time.Duration
	// PollOnly disables LISTEN/NOTIFY wakeups (needed behind PgBouncer in
	// transaction mode). In-process wakeups, from enqueues through the same
	// *queue.Queue, still work.
	PollOnly bool
	// FetchCooldown is the least time between two fetches of one queue;
	// default 100ms. Under load it lets finished slots accumulate into one
	// batched fetch (one transaction for many jobs, and a batch the fair
	// tenant policy can share out); an idle queue still fetches at once.
	FetchCooldown time.Duration

	// MaintenanceInterval is how often the leader rescues expired leases,
	// enqueues due periodic jobs and prunes finished jobs; default 5s.
	MaintenanceInterval time.Duration
	// LeaderTTL is how long a leadership lease lasts unless renewed (on the
	// client's clock); default 3 * MaintenanceInterval.
	LeaderTTL time.Duration
	// LeaderName is the leadership's name; default DefaultLeaderName.
	LeaderName string
	// DisableMaintenance stops this client from ever running maintenance
	// (rescue, periodic jobs); another client must.
	DisableMaintenance bool
	// PeriodicJobs are enqueued by the leader at each occurrence.
	PeriodicJobs []PeriodicJob
	// Retention is how long finished jobs keep their state before the
	// leader deletes it (queue.Retention: zero durations are River's
	// defaults, 24h for succeeded and cancelled jobs and 7 days for
	// failed ones; a negative one keeps that status forever). Their log
	// entries are never deleted.
	Retention queue.Retention

	// Now is the client's clock, used for leadership leases, periodic
	// occurrences and event times. It must agree with the queue's clock
	// (queue.Config.Now); default the queue's HLC wall clock, which does.
	Now func() time.Time
	// OnEvent, if set, is called synchronously with every event, from the
	// goroutine where it happened: keep it quick, and do not call Stop from
	// it.
	OnEvent func(Event)
	Logger  *slog.Logger
}

// Client runs the handlers of Workers on the jobs of a queue.Queue.
type Client struct {
	q      *queue.Queue
	cfg    Config
	id     string
	now    func() time.Time
	log    *slog.Logger
	kinds  map[string]*kindEntry
	queues []*queueState
	events eventBus

	periodic []*periodicState
	// rollupDue is when the next minute of activity settles (the
	// maintenance goroutine's only).
	rollupDue time.Time

	slotMu  sync.Mutex
	running int // jobs holding a client slot

	// recording bounds the outcomes being written (a handler is done, its
	// slot free, its outcome in a batch on the way to the database) to
	// MaxWorkers: past that, a finished job keeps its slot until one is
	// written, so fetching slows to the pace of the writes instead of
	// piling finished jobs up in memory.
	recording chan struct{}

	runMu sync.Mutex
	jobs  map[uuid.UUID]*runningJob

	lifeMu    sync.Mutex
	started   bool
	stopping  bool
	stopDone  chan struct{}
	stopErr   error
	stopFetch chan struct{} // closed: no more fetches
	crashed   chan struct{} // closed: heartbeats and maintenance stop dead (tests)
	bgCancel  context.CancelFunc
	bgWG      sync.WaitGroup // producers, wake fan-out, maintenance
	prodWG    sync.WaitGroup // producers only
	jobWG     sync.WaitGroup // job lifecycles (not abandoned handlers)

	// jobsCtx is every handler context's parent; cancelled when Stop runs
	// out of time.
	jobsCtx    context.Context
	jobsCancel context.CancelCauseFunc
}

// queueState is one client queue at run time.
type queueState struct {
	name    string
	cfg     QueueConfig
	kinds   []string // nil: every kind
	max     int
	running int // under Client.slotMu
	// lastTenant is the tenant of the last job fetched, so the next fair
	// round starts with the one after it (only the fetch loop uses it).
	lastTenant string

	wake     chan struct{} // a job may be available
	freed    chan struct{} // a slot was freed
	fetchReq chan chan int // tests: fetch now, report how many
}

// ErrClientStopped is the cause of a handler context cancelled by Stop.
var ErrClientStopped = errors.New("worker: client stopped")

// errLeaseLostCause is the cause of a handler context cancelled because
// its lease was lost.
var errLeaseLostCause = fmt.Errorf("worker: %w", queue.ErrLeaseLost)

// NewClient validates cfg and returns a client for q; Start runs it. A
// client that is never started can still insert (Client.Insert).
func NewClient(q *queue.Queue, cfg Config) (*Client, error) {
	if q == nil {
		return nil, errors.New("worker: NewClient with a nil queue")
	}
	cfg = cfg.withDefaults(q.Clock())
	problems := cfg.validate()
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	kinds := cfg.Workers.snapshot()
	queueCfgs := map[string]QueueConfig{DefaultQueue: {}}
	for name, qc := range cfg.Queues {
		queueCfgs[name] = qc
	}
	byQueue := map[string][]string{}
	for kind, e := range kinds {
		if _, ok := queueCfgs[e.opts.Queue]; !ok {
			bad("kind %q is registered to queue %q, which Config.Queues does not define", kind, e.opts.Queue)
			continue
		}
		byQueue[e.opts.Queue] = append(byQueue[e.opts.Queue], kind)
	}
	c := &Client{q: q, cfg: cfg, id: cfg.ID, now: cfg.Now, log: cfg.Logger, kinds: kinds, jobs: map[uuid.UUID]*runningJob{},
		recording: make(chan struct{}, cfg.MaxWorkers)}
	allKinds := 0
	for _, name := range slices.Sorted(maps.Keys(queueCfgs)) {
		qc := queueCfgs[name]
		if name == "" {
			bad("a queue with an empty name")
			continue
		}
		if qc.MaxWorkers == 0 {
			qc.MaxWorkers = cfg.MaxWorkers
		}
		if qc.MaxWorkers < 0 {
			bad("queue %q: MaxWorkers = %d, want > 0", name, qc.MaxWorkers)
		}
		ks := byQueue[name]
		sort.Strings(ks)
		if qc.AllKinds {
			allKinds++
			ks = nil
		} else if len(ks) == 0 {
			continue // nothing to fetch
		}
		c.queues = append(c.queues, &queueState{
			name: name, cfg: qc, kinds: ks, max: qc.MaxWorkers,
			wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), fetchReq: make(chan chan int),
		})
	}
	if allKinds > 1 {
		bad("%d queues set AllKinds, at most one may", allKinds)
	}
	seen := map[string]bool{}
	for i, p := range cfg.PeriodicJobs {
		switch {
		case p.Name == "":
			bad("PeriodicJobs[%d]: empty Name", i)
		case seen[p.Name]:
			bad("PeriodicJobs[%d]: name %q used twice", i, p.Name)
		case p.Schedule == nil:
			bad("periodic job %q: nil Schedule", p.Name)
		case p.Args == nil:
			bad("periodic job %q: nil Args", p.Name)
		default:
			if err := chain.ValidateTenantID(p.TenantID); err != nil {
				bad("periodic job %q: %v", p.Name, err)
			}
			if len(periodicKey(p.Name, time.Unix(0, 0))) > 255 {
				bad("periodic job %q: name too long for an idempotency key", p.Name)
			}
		}
		seen[p.Name] = true
		c.periodic = append(c.periodic, &periodicState{job: p})
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("worker: invalid config: %s", strings.Join(problems, "; "))
	}
	c.events = eventBus{onEvent: cfg.OnEvent, log: func(msg string, args ...any) { c.log.Error(msg, args...) }}
	return c, nil
}

func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// ID returns the client's id (lease owner, leadership holder).
func (c *Client) ID() string { return c.id }

// Queue returns the queue the client works.
func (c *Client) Queue() *queue.Queue { return c.q }

// Insert is the package's Insert with this client's kind options (their
// MaxAttempts) applied.
func (c *Client) Insert(ctx context.Context, tenantID string, args Args, opts *InsertOpts) (queue.EnqueueResult, error) {
	j, err := buildJob(ctx, c.q, tenantID, args, opts, c.kinds, false)
	if err != nil {
		return queue.EnqueueResult{}, err
	}
	res, err := insertThrough(ctx, c.cfg.InsertMiddleware, []queue.Job{j}, func(ctx context.Context, jobs []queue.Job) ([]queue.EnqueueResult, error) {
		if len(jobs) != 1 {
			return nil, fmt.Errorf("worker: insert middleware passed on %d jobs of one insert", len(jobs))
		}
		r, err := c.q.Enqueue(ctx, jobs[0])
		return []queue.EnqueueResult{r}, err
	})
	if err != nil || len(res) != 1 {
		return queue.EnqueueResult{}, insertResultErr(err, len(res))
	}
	return res[0], nil
}

// insertResultErr is err, or an error for a middleware that answered
// an insert of one job with n results.
func insertResultErr(err error, n int) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("worker: insert middleware answered one insert with %d results", n)
}

// InsertTx is the package's InsertTx with this client's kind options.
func (c *Client) InsertTx(ctx context.Context, tx any, tenantID string, args Args, opts *InsertOpts) (queue.EnqueueResult, error) {
	j, err := buildJob(ctx, c.q, tenantID, args, opts, c.kinds, true)
	if err != nil {
		return queue.EnqueueResult{}, err
	}
	res, err := insertThrough(ctx, c.cfg.InsertMiddleware, []queue.Job{j}, func(ctx context.Context, jobs []queue.Job) ([]queue.EnqueueResult, error) {
		return c.q.EnqueueTx(ctx, tx, jobs...)
	})
	if err != nil || len(res) != 1 {
		return queue.EnqueueResult{}, insertResultErr(err, len(res))
	}
	return res[0], nil
}

// InsertMany is the package's InsertMany with this client's kind options.
func (c *Client) InsertMany(ctx context.Context, params []InsertManyParams) ([]queue.EnqueueResult, error) {
	jobs, err := buildJobs(ctx, c.q, params, c.kinds)
	if err != nil {
		return nil, err
	}
	return insertThrough(ctx, c.cfg.InsertMiddleware, jobs, c.q.EnqueueMany)
}

// Start starts fetching and working jobs, and maintenance, in the
// background, and returns. The client runs until Stop, or until ctx ends,
// which stops it as Stop with an expired context would: running jobs are
// cancelled and handed back at once.
func (c *Client) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.started {
		return errors.New("worker: client already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.started = true
	c.stopFetch = make(chan struct{})
	c.crashed = make(chan struct{})
	c.stopDone = make(chan struct{})
	c.jobsCtx, c.jobsCancel = context.WithCancelCause(context.WithoutCancel(ctx))
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.bgCancel = cancel

	for _, qs := range c.queues {
		c.bgWG.Add(1)
		c.prodWG.Add(1)
		go c.produce(qs)
	}

	sub, unsubscribe := c.q.Subscribe()
	var listened <-chan struct{}
	if c.q.Backend().Capabilities().Listen && !c.cfg.PollOnly {
		ch, err := c.q.Backend().Listen(bg)
		if err != nil {
			c.log.Warn("worker: cannot listen for new jobs; polling only", "error", err, "poll_interval", c.cfg.PollInterval)
		} else {
			listened = ch
		}
	}
	c.bgWG.Add(1)
	go func() {
		defer c.bgWG.Done()
		defer unsubscribe()
		for {
			select {
			case <-bg.Done():
				return
			case <-sub:
			case _, ok := <-listened:
				if !ok {
					listened = nil
					continue
				}
			}
			c.wakeAll()
		}
	}()

	if !c.cfg.DisableMaintenance {
		c.bgWG.Add(1)
		go c.maintain(bg)
	}

	go func() {
		select {
		case <-ctx.Done():
			expired, cancel := context.WithCancel(context.Background())
			cancel()
			_ = c.Stop(expired)
		case <-c.stopDone:
		}
	}()
	c.log.Info("worker: client started", "id", c.id, "queues", len(c.queues), "kinds", len(c.kinds), "max_workers", c.cfg.MaxWorkers)
	return nil
}

// Stop stops fetching, resigns leadership, and waits for running jobs to
// finish until ctx ends. Then it cancels the contexts of the jobs still
// running and hands them back to the queue (queue.Snooze with no delay:
// pending again at once, attempt not counted) so another client picks
// them up without waiting for their leases to expire; their handlers'
// eventual results are discarded. It returns nil if every job finished,
// else an error wrapping ctx's. Stop on a client never started returns
// nil; a second Stop waits for the first.
func (c *Client) Stop(ctx context.Context) error {
	c.lifeMu.Lock()
	if !c.started {
		c.lifeMu.Unlock()
		return nil
	}
	if c.stopping {
		c.lifeMu.Unlock()
		select {
		case <-c.stopDone:
			return c.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.stopping = true
	c.lifeMu.Unlock()

	close(c.stopFetch)
	c.prodWG.Wait() // after this no job starts: fetched leases are handed back
	c.bgCancel()    // maintenance resigns on its way out

	finished := make(chan struct{})
	go func() {
		c.jobWG.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		n := c.releaseRunning()
		<-finished
		if n > 0 { // else every job finished on its own after all
			err = fmt.Errorf("worker: stopped with %d jobs still running, handed back to the queue: %w", n, ctx.Err())
		}
	}
	c.bgWG.Wait()
	c.jobsCancel(ErrClientStopped)
	c.stopErr = err
	close(c.stopDone)
	c.log.Info("worker: client stopped", "id", c.id, "error", err)
	return err
}

// releaseRunning takes every job still running away from its handler and
// gives it back to the queue.
func (c *Client) releaseRunning() int {
	c.runMu.Lock()
	var claimed []*runningJob
	for _, rj := range c.jobs {
		// Claim before cancelling: a handler returning because of the
		// cancellation must not record that as a failed attempt.
		if rj.claim() {
			claimed = append(claimed, rj)
		}
	}
	c.runMu.Unlock()
	c.jobsCancel(ErrClientStopped)
	var wg sync.WaitGroup
	for _, rj := range claimed {
		close(rj.released)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
			defer cancel()
			if err := c.q.Snooze(ctx, rj.lease, 0); err != nil {
				if errors.Is(err, queue.ErrLeaseLost) {
					c.emit(Event{Type: EventLeaseLost, Queue: rj.queue, Lease: rj.lease, Err: err})
					return
				}
				c.log.Error("worker: handing a job back to the queue at stop failed; it will be rescued when its lease expires",
					"job_id", rj.lease.JobID, "kind", rj.lease.Kind, "error", err)
				return
			}
			c.emit(Event{Type: EventJobReleased, Queue: rj.queue, Lease: rj.lease})
		}()
	}
	wg.Wait()
	return len(claimed)
}

// crash stops the client dead, as a killed process would, except that
// handlers already running go on and try to record their results: no more
// fetches, heartbeats or maintenance, leadership not resigned, leases not
// handed back. For tests of crash recovery.
func (c *Client) crash() {
	c.lifeMu.Lock()
	if !c.started || c.stopping {
		c.lifeMu.Unlock()
		return
	}
	c.stopping = true
	c.lifeMu.Unlock()
	close(c.crashed)
	close(c.stopFetch)
	c.prodWG.Wait()
	c.bgCancel()
	c.bgWG.Wait()
	go func() {
		c.jobWG.Wait()
		close(c.stopDone)
	}()
}

func (c *Client) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = c.now()
	}
	c.events.emit(e)
}

func (c *Client) wakeAll() {
	for _, qs := range c.queues {
		select {
		case qs.wake <- struct{}{}:
		default:
		}
	}
}

// acquire reserves up to want slots of qs and of the client.
func (c *Client) acquire(qs *queueState, want int) int {
	c.slotMu.Lock()
	defer c.slotMu.Unlock()
	n := min(want, qs.max-qs.running, c.cfg.MaxWorkers-c.running)
	if n <= 0 {
		return 0
	}
	qs.running += n
	c.running += n
	return n
}

func (c *Client) release(qs *queueState, n int) {
	if n == 0 {
		return
	}
	c.slotMu.Lock()
	qs.running -= n
	c.running -= n
	c.slotMu.Unlock()
	// The client-wide cap is shared: a slot freed here may be the one
	// another queue was waiting for.
	for _, other := range c.queues {
		select {
		case other.freed <- struct{}{}:
		default:
		}
	}
}

// fetchTimeout bounds one Dequeue. It is not tied to Stop: a dequeue cut
// off after its commit would strand the leases it took until they expire.
const fetchTimeout = 30 * time.Second

// produce is a queue's fetch loop. It fetches when woken (an enqueue, a
// notification, the poll timer) and, while the last fetch came back full,
// when slots free up; never twice within FetchCooldown.
func (c *Client) produce(qs *queueState) {
	defer c.bgWG.Done()
	defer c.prodWG.Done()
	poll := time.NewTimer(0)
	defer poll.Stop()
	var cooldown *time.Timer
	var cooldownC <-chan time.Time
	defer func() {
		if cooldown != nil {
			cooldown.Stop()
		}
	}()
	hungry := false // the last fetch filled every free slot: more may be waiting
	var last time.Time
	for {
		want := false
		select {
		case <-c.stopFetch:
			return
		case <-qs.wake:
			want = true
		case <-poll.C:
			poll.Reset(c.cfg.PollInterval)
			want = true
		case <-qs.freed:
			want = hungry
		case <-cooldownC:
			cooldownC = nil
			want = true
		case reply := <-qs.fetchReq:
			last = time.Now()
			var n int
			hungry, n = c.fetch(qs)
			reply <- n
			continue
		}
		if !want || cooldownC != nil {
			continue
		}
		if wait := c.cfg.FetchCooldown - time.Since(last); wait > 0 {
			if cooldown == nil {
				cooldown = time.NewTimer(wait)
			} else {
				cooldown.Reset(wait)
			}
			cooldownC = cooldown.C
			continue
		}
		last = time.Now()
		hungry, _ = c.fetch(qs)
	}
}

// fetch leases as many jobs as qs and the client have free slots for and
// starts them. It reports whether it filled every free slot (so more may
// be waiting) and how many it started.
func (c *Client) fetch(qs *queueState) (hungry bool, started int) {
	limit := c.acquire(qs, 1000)
	if limit == 0 {
		return true, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	leases, err := c.q.Dequeue(ctx, queue.DequeueOptions{
		Owner: c.id, Limit: limit, LeaseFor: c.cfg.LeaseFor, Kinds: qs.kinds,
		FairTenants: qs.cfg.Tenants == TenantsFair, StrictPartitions: qs.cfg.StrictPartitions,
		FairAfter: qs.lastTenant,
	})
	cancel()
	if len(leases) > 0 {
		qs.lastTenant = leases[len(leases)-1].TenantID
	}
	if err != nil {
		c.release(qs, limit)
		c.log.Error("worker: fetching jobs failed; retrying at the next poll", "queue", qs.name, "error", err)
		return false, 0
	}
	c.release(qs, limit-len(leases))
	select {
	case <-c.stopFetch:
		// Stopping: these never start. Hand them straight back.
		for _, l := range leases {
			ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
			if err := c.q.Snooze(ctx, l, 0); err != nil {
				c.log.Error("worker: handing back a job fetched while stopping failed; it will be rescued when its lease expires", "job_id", l.JobID, "error", err)
			}
			cancel()
		}
		c.release(qs, len(leases))
		return false, 0
	default:
	}
	for _, l := range leases {
		c.start(qs, l)
	}
	if len(leases) == limit && limit == 1000 {
		// The batch cap, not the slots, limited this fetch: go again.
		select {
		case qs.wake <- struct{}{}:
		default:
		}
	}
	return len(leases) == limit, len(leases)
}
