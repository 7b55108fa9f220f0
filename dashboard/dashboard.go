// Package dashboard is the operators' web interface that `ordo serve`
// mounts at / (docs/dashboard.md): server-rendered pages over the queue,
// the chains and the audit trail, with a little vanilla JavaScript for
// live refresh and for checking inclusion proofs in the browser.
//
// Pages: an overview of every tenant the caller may see (charts of jobs
// enqueued, completed and failed and of the wait for a first start, over
// the last hour or day, drawn as inline SVG; per tenant jobs by state,
// enqueue and completion rates, oldest pending job, paused queues, the
// last verification), a tenant's jobs in HLC order with a chain-order view
// that draws the links, a search (job id, or payload text in the newest
// jobs) and a kind picker, a job with its chain entry and inclusion proof,
// chain health (verification on demand, checkpoints, snapshots), a
// tenant's queues (jobs per kind, this node's worker queues), the periodic
// jobs, the nodes and their clocks, and confirmed actions: retry and
// cancel a job, retry, cancel or delete the jobs selected on a page of
// the list, pause and resume a queue.
//
// Every page reads with JavaScript off. Callers log in with an API token
// (the same tokens as the JSON API); the session cookie names a
// server-side session that holds the token's SHA-256, and every request
// re-checks that hash, so a revoked token ends its sessions at once. A
// tenant token sees only its tenant.
package dashboard

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/authguard"
	"github.com/ordo-sched/ordo/queue"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Principal is who a session acts as: an admin, or one tenant.
type Principal struct {
	Admin  bool
	Tenant string // the one tenant of a tenant token
	Name   string // the token's name or id, recorded with actions
}

// MayActFor reports whether p may see and change tenant's jobs.
func (p Principal) MayActFor(tenant string) bool { return p.Admin || p.Tenant == tenant }

// ErrBadToken is what Config.Authenticate returns for an unknown or
// revoked token.
var ErrBadToken = errors.New("dashboard: invalid or revoked token")

// Session lifetimes when Config sets none.
const (
	DefaultSessionIdle = 8 * time.Hour
	DefaultSessionMax  = 24 * time.Hour
)

// Config is what the dashboard needs from the service.
type Config struct {
	// Queue is the node's queue; the dashboard lists jobs and keeps
	// operator state through its backend.
	Queue *queue.Queue
	// Authenticate resolves a token by its SHA-256: ErrBadToken for an
	// unknown or revoked one. It is called on every request.
	Authenticate func(ctx context.Context, tokenHash [32]byte) (Principal, error)
	// Verify verifies a tenant's chains and records the result as the
	// tenant's latest verification (source names who asked).
	Verify func(ctx context.Context, tenant, source string) (*audit.Result, error)
	// Audit is the backend's audit store, for proofs, checkpoints and
	// snapshots.
	Audit driver.AuditStore
	// PublicKey verifies checkpoint and snapshot signatures, on the server
	// and in the browser; nil if the service has no key.
	PublicKey *audit.PublicKey
	// NodeID is this node's id; Now its wall clock (default time.Now).
	NodeID string
	Now    func() time.Time
	Logger *slog.Logger
	// SessionIdle and SessionMax bound a session's life: idle time and
	// total (defaults DefaultSessionIdle and DefaultSessionMax).
	SessionIdle, SessionMax time.Duration
	// MaxSessions bounds the sessions in all (a login beyond it is
	// refused until some expire) and MaxPerToken those of one token (its
	// oldest ends); defaults DefaultMaxSessions and DefaultMaxPerToken.
	MaxSessions, MaxPerToken int
	// Demo puts a line on each page saying what it shows, for someone
	// seeing ordo for the first time (`ordo serve --demo`).
	Demo bool
	// Guard counts failed logins per client address (shared with the
	// API's bearer checks); nil: a guard of its own, 10 a minute.
	Guard *authguard.Guard
	// Worker describes this node's worker client, for the queues page
	// (its queues and concurrency) and the periodic jobs page; nil when
	// the node runs none.
	Worker *WorkerInfo
}

// WorkerInfo is what the dashboard shows of the node's worker client.
type WorkerInfo struct {
	MaxWorkers int // the client's cap on running jobs
	// Queues reports the client's queues as they are now (their running
	// jobs change).
	Queues   func() []WorkerQueue
	Periodic []PeriodicJob
}

// WorkerQueue is one queue of the worker client.
type WorkerQueue struct {
	Name             string
	MaxWorkers       int
	Running          int      // on this node, now
	Kinds            []string // nil with AllKinds
	AllKinds         bool
	Tenants          string // "fair" or "fifo"
	StrictPartitions bool
}

// PeriodicJob is a periodic job of the worker client.
type PeriodicJob struct {
	Name, TenantID string
	Schedule       string                    // as the schedule describes itself
	Next           func(time.Time) time.Time // the first occurrence after a time; zero for none
}

// Defaults of Config's session bounds.
const (
	DefaultMaxSessions = 10_000
	DefaultMaxPerToken = 10
)

// Dashboard is the web interface, an http.Handler.
type Dashboard struct {
	cfg      Config
	backend  driver.Driver // the queue's: jobs, listing, operator state
	pages    map[string]*template.Template
	sessions *sessionStore
	mux      *http.ServeMux
	log      *slog.Logger
}

// New checks cfg and builds the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Queue == nil || cfg.Authenticate == nil || cfg.Verify == nil {
		return nil, errors.New("dashboard: Config needs Queue, Authenticate and Verify")
	}
	d := &Dashboard{cfg: cfg, log: cfg.Logger}
	d.backend = cfg.Queue.Backend()
	if d.cfg.Now == nil {
		d.cfg.Now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.cfg.SessionIdle <= 0 {
		d.cfg.SessionIdle = DefaultSessionIdle
	}
	if d.cfg.SessionMax <= 0 {
		d.cfg.SessionMax = DefaultSessionMax
	}
	if d.cfg.MaxSessions <= 0 {
		d.cfg.MaxSessions = DefaultMaxSessions
	}
	if d.cfg.MaxPerToken <= 0 {
		d.cfg.MaxPerToken = DefaultMaxPerToken
	}
	if d.cfg.Guard == nil {
		d.cfg.Guard = authguard.New(10, time.Minute, d.cfg.Now)
	}
	d.sessions = &sessionStore{db: d.backend, idle: d.cfg.SessionIdle, maxLife: d.cfg.SessionMax, max: d.cfg.MaxSessions, perToken: d.cfg.MaxPerToken}
	var err error
	if d.pages, err = parsePages(); err != nil {
		return nil, err
	}
	d.mux = d.routes()
	return d, nil
}

// ServeHTTP serves the dashboard. Every answer forbids caching and
// framing, and allows scripts and styles from the dashboard only.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static") // the directory is embedded
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET /login", d.loginPage)
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("POST /logout", d.logout)
	mux.Handle("GET /{$}", d.page(d.overview))
	mux.Handle("GET /nodes", d.page(d.nodes))
	mux.Handle("GET /periodic", d.page(d.periodic))
	mux.Handle("GET /tenants", d.page(d.pickTenant))
	mux.Handle("GET /tenants/{tenant}/jobs", d.tenantPage(d.jobs))
	mux.Handle("GET /tenants/{tenant}/jobs/bulk", d.tenantPage(d.confirmBulk))
	mux.Handle("POST /tenants/{tenant}/jobs/bulk", d.tenantAction(d.bulk))
	mux.Handle("GET /tenants/{tenant}/jobs/{id}", d.tenantPage(d.job))
	mux.Handle("GET /tenants/{tenant}/jobs/{id}/{action}", d.tenantPage(d.confirmJobAction))
	mux.Handle("POST /tenants/{tenant}/jobs/{id}/{action}", d.tenantAction(d.jobAction))
	mux.Handle("GET /tenants/{tenant}/chain", d.tenantPage(d.chainHealth))
	mux.Handle("POST /tenants/{tenant}/verify", d.tenantAction(d.verify))
	mux.Handle("GET /tenants/{tenant}/queues", d.tenantPage(d.queues))
	mux.Handle("GET /tenants/{tenant}/queues/{action}", d.tenantPage(d.confirmQueueAction))
	mux.Handle("POST /tenants/{tenant}/queues/{action}", d.tenantAction(d.queueAction))
	mux.Handle("/", d.page(func(w http.ResponseWriter, r *http.Request, v *view) {
		d.fail(w, r, v, http.StatusNotFound, "There is no such page.")
	}))
	return mux
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache") // revalidate: assets change with the binary
		h.ServeHTTP(w, r)
	})
}
