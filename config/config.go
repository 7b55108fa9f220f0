// Package config is the configuration of `ordo serve` and of every CLI
// command: one YAML file in the shape of the HLC migration guide, so that
// the guide's snippets work verbatim, with environment overrides in the
// .NET convention and command-line flags on top.
//
//	Scheduler:
//	  Queue:
//	    Hlc:
//	      EnableHlcOrdering: true
//	      DualWriteMode: true
//	Ordo:
//	  NodeId: scheduler-east-1
//	  Database:
//	    Url: postgres://ordo@db.internal/ordo
//
// Sources, later ones winning: the built-in defaults, the file,
// ORDO_DATABASE_URL, environment variables named after the keys with "__"
// between the parts (Scheduler__Queue__Hlc__EnableHlcOrdering=true,
// Ordo__Http__Listen=0.0.0.0:8080; list items by index,
// Ordo__Auth__Tokens__0__Tenant=acme), then flags. Keys are matched without
// regard to case, as .NET does. A key that is not part of the
// configuration, in the file or in a Scheduler__ or Ordo__ variable, is an
// error, as is every invalid value; Load reports all of them at once, each
// with its key, its value, where it came from and what is allowed
// (the guide's ValidateOnStart).
//
// docs/configuration.md documents every key.
package config

import (
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/postgres"
)

// Config is the whole configuration. Field names are the keys; a field's
// reload tag says whether a change takes effect on a running service
// ("live") or needs a restart (no tag).
type Config struct {
	Scheduler Scheduler
	Ordo      Ordo

	// file is the configuration file read, and fileHash the SHA-256 of
	// the bytes parsed, so a watcher can tell a changed file.
	file     string
	fileHash [32]byte
}

// Scheduler is the guide's section.
type Scheduler struct {
	Queue SchedulerQueue
}

// SchedulerQueue is the guide's Scheduler:Queue section.
type SchedulerQueue struct {
	Hlc Hlc
}

// Hlc are the guide's SchedulerHlcOptions, under the guide's names. All of
// them change on a running service (Queue.SetOptions).
type Hlc struct {
	EnableHlcOrdering bool `reload:"live"`
	DualWriteMode     bool `reload:"live"`
	VerifyOnDequeue   bool `reload:"live"`
	MaxClockDriftMs   int  `reload:"live"`
}

// QueueOptions returns the options as the queue takes them.
func (h Hlc) QueueOptions() queue.Options {
	return queue.Options{
		EnableHlcOrdering: h.EnableHlcOrdering,
		DualWriteMode:     h.DualWriteMode,
		VerifyOnDequeue:   h.VerifyOnDequeue,
		MaxClockDriftMs:   h.MaxClockDriftMs,
	}
}

// Ordo is ordo's own section.
type Ordo struct {
	// NodeId is this node's id in HLC timestamps: stable across restarts,
	// unique among nodes. Default: the host name up to its first dot.
	NodeId    string
	Database  Database
	Http      Http
	Auth      Auth
	Worker    Worker
	Retention Retention
	Demo      Demo
	Audit     Audit
	Reload    Reload
	Log       Log
}

// Database says where the queue lives.
type Database struct {
	// Url is postgres://... or sqlite:PATH; default sqlite:ordo.db.
	Url string
	// AutoMigrate applies pending migrations at start; default true. With
	// false, a service whose schema is behind refuses to start.
	AutoMigrate bool
	// LogPartitionPeriod (PostgreSQL) is the span of t_hlc time of each
	// partition of scheduler_log, which the service makes ahead (one node
	// at a time, by leadership), so that dropping archived history drops
	// whole partitions; default postgres.DefaultLogPartitionPeriod (0:
	// none, as every partition costs lookups of the log); 0 makes none (new entries go to the default partition).
	LogPartitionPeriod time.Duration
}

// Http is the HTTP server: the JSON API, /metrics, /healthz, /readyz.
type Http struct {
	// Listen is host:port; default 127.0.0.1:8080.
	Listen string
	// MaxPayloadBytes bounds one job's payload; default 1 MiB.
	MaxPayloadBytes int
	// MaxBodyBytes bounds one request body; default 16 MiB.
	MaxBodyBytes int
	// MaxBatchJobs bounds the jobs of one batch enqueue; default 1000.
	MaxBatchJobs int
	// MaxDequeue bounds the jobs one dequeue call may lease; default 100.
	MaxDequeue int
	// MetricsAuth says who may read /metrics, which names tenants:
	// "token" an admin bearer token, "none" anyone, "auto" (default)
	// anyone when Listen is a loopback address, else "token".
	MetricsAuth string `reload:"live"`
	// AuthFailuresPerMinute is how many failed authentications (a wrong
	// bearer token, a wrong token on the dashboard's login) one client
	// address may make in a minute before it gets 429 until the minute
	// ends; default 10.
	AuthFailuresPerMinute int
	// MaxSessions bounds the dashboard's sessions in all, and
	// MaxSessionsPerToken those of one token (its oldest ends when it
	// logs in once more); defaults 10000 and 10.
	MaxSessions         int
	MaxSessionsPerToken int
	// MaxConcurrentBatches bounds the batch enqueues decoded at once;
	// more get 429 with Retry-After; default 4.
	MaxConcurrentBatches int
	// ShutdownTimeout is how long a stopping service waits for requests
	// in flight and running jobs; default 30s.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers; default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds how long a client may take to send a whole
	// request, body included; default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds the handling and writing of one response, from
	// the end of the request headers; default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long; default
	// 2m.
	IdleTimeout time.Duration
}

// Auth configures bearer tokens. Tokens created with `ordo token create`
// live in the database and need no configuration.
type Auth struct {
	// Tokens are accepted besides the database's, by SHA-256 hash.
	Tokens []Token `reload:"live"`
}

// Token is one configured bearer token.
type Token struct {
	// Name identifies the token in logs.
	Name string
	// Tenant is the one tenant the token may act for; empty with Admin.
	Tenant string
	// Admin tokens may act for every tenant.
	Admin bool
	// Sha256 is the hex SHA-256 of the token text (`ordo token hash`, or
	// `printf %s "$TOKEN" | sha256sum`).
	Sha256 string
}

// Worker is the handler runtime `ordo serve` runs: the built-in kinds
// http and noop.
type Worker struct {
	// Enabled runs the built-in handlers; default true.
	Enabled bool
	// MaxWorkers caps the jobs run at once; default 10.
	MaxWorkers int
	// LeaseFor is a job's lease, renewed while it runs; default 30s.
	LeaseFor time.Duration
	// PollInterval is how often the queue is polled; default 1s.
	PollInterval time.Duration
	// Timeout bounds one attempt; default 1m.
	Timeout time.Duration
	// HttpKind configures the built-in http kind.
	HttpKind HttpKind
}

// Retention is how long finished jobs keep their state (status, attempts,
// last error) before the maintenance leader deletes it, per final status;
// 0 keeps that status's jobs forever. Their log entries are never
// deleted: the chain still verifies and a pruned job still reads, as
// "pruned" (docs/queue.md, Retention). Pruning runs with the worker
// (Ordo:Worker:Enabled).
type Retention struct {
	// Succeeded: default 24h (River's).
	Succeeded time.Duration
	// Cancelled: default 24h.
	Cancelled time.Duration
	// Failed: default 168h (7 days).
	Failed time.Duration
}

// HttpKind configures the built-in http job kind.
type HttpKind struct {
	// AllowedHosts are the hosts the http kind may call: "api.example.com"
	// and "*.example.com" (any subdomain) on the scheme's port only (80,
	// 443), "api.example.com:8443" on that port. A URL not listed fails
	// without retry. Empty: the kind calls nothing.
	AllowedHosts []string `reload:"live"`
	// Timeout bounds one request; default 30s.
	Timeout time.Duration
}

// Demo configures `ordo serve --demo`.
type Demo struct {
	// Enabled enqueues a trickle of sample noop jobs.
	Enabled bool
	// Rate is jobs per second, across all demo tenants; default 2.
	Rate float64
	// Tenants receive the jobs in turn; default demo-a, demo-b.
	Tenants []string
}

// Audit configures the keys of chain verification, checkpoints and batch
// snapshots (`ordo keygen` makes them; docs/audit.md).
type Audit struct {
	// SigningKeyFile holds this node's private key. With it, `ordo serve`
	// keeps every chain's Merkle tree and signs a checkpoint of it every
	// CheckpointInterval (one node at a time, by leadership), and signs a
	// batch snapshot of every dequeued batch when SnapshotOnDequeue.
	SigningKeyFile string
	// PublicKeyFile holds the checkpointer's public key: verification then
	// checks the signatures of checkpoints. Default: the public half of
	// SigningKeyFile.
	PublicKeyFile string
	// CheckpointInterval is how often chains are checkpointed; default
	// 10s; 0 turns the checkpointer off.
	CheckpointInterval time.Duration
	// SnapshotOnDequeue signs and stores a snapshot of the chain range of
	// every dequeued batch (one per chain it touches).
	SnapshotOnDequeue bool
	// VerifyInterval is how often the service verifies the entries every
	// chain gained since the last round (one node at a time, by
	// leadership; audit.IncrementalVerifier); default
	// audit.DefaultVerifyInterval (1m); 0 turns it off.
	VerifyInterval time.Duration
	// PublicTiles are the tenants whose chains `ordo serve` serves as
	// tlog-tiles logs (checkpoint, tiles, entry bundles) to anyone, without
	// a token; every other tenant's need a token that may act for it, as
	// every route does. Default: none.
	PublicTiles []string
	// Witnesses are the C2SP tlog-witness witnesses the checkpointer
	// submits every new checkpoint to (docs/audit.md, "Witnesses"); their
	// cosignatures are stored and served with the checkpoints. Needs
	// SigningKeyFile. Default: none.
	Witnesses []Witness
}

// Witness is one witness of Ordo:Audit:Witnesses.
type Witness struct {
	// URL is the witness's URL prefix: checkpoints are posted to
	// URL/add-checkpoint. http or https.
	URL string
	// Key is the witness's verifier key, in the vkey form of C2SP
	// tlog-cosignature (<name>+<hash>+<base64>), as litewitness prints it.
	Key string
}

// Reload configures how a running service notices a changed file.
type Reload struct {
	// PollInterval is how often the file is checked for changes; default
	// 2s; 0 turns polling off (SIGHUP still reloads).
	PollInterval time.Duration
}

// Log configures the service's log.
type Log struct {
	// Level is debug, info, warn or error; default info.
	Level string
	// Format is text or json; default text.
	Format string
}

// The values of Ordo:Http:MetricsAuth.
const (
	MetricsAuthAuto  = "auto"
	MetricsAuthToken = "token"
	MetricsAuthNone  = "none"
)

// Defaults returns the configuration when nothing is set, except for the
// node id, which Load fills from the host name.
func Defaults() *Config {
	return &Config{
		Scheduler: Scheduler{Queue: SchedulerQueue{Hlc: Hlc{MaxClockDriftMs: queue.DefaultMaxClockDriftMs}}},
		Ordo: Ordo{
			Database: Database{Url: store.DefaultURL, AutoMigrate: true, LogPartitionPeriod: postgres.DefaultLogPartitionPeriod},
			Http: Http{
				Listen:          DefaultListen,
				MaxPayloadBytes: 1 << 20,
				MaxBodyBytes:    16 << 20,
				MaxBatchJobs:    1000,
				MaxDequeue:      100,
				ShutdownTimeout: 30 * time.Second,

				MetricsAuth:           MetricsAuthAuto,
				AuthFailuresPerMinute: 10,
				MaxSessions:           10_000,
				MaxSessionsPerToken:   10,
				MaxConcurrentBatches:  4,
				ReadHeaderTimeout:     10 * time.Second,
				ReadTimeout:           30 * time.Second,
				WriteTimeout:          time.Minute,
				IdleTimeout:           2 * time.Minute,
			},
			Worker: Worker{
				Enabled:      true,
				MaxWorkers:   10,
				LeaseFor:     30 * time.Second,
				PollInterval: time.Second,
				Timeout:      time.Minute,
				HttpKind:     HttpKind{Timeout: 30 * time.Second},
			},
			Retention: Retention{
				Succeeded: queue.DefaultRetainSucceeded,
				Cancelled: queue.DefaultRetainCancelled,
				Failed:    queue.DefaultRetainFailed,
			},
			Demo:   Demo{Rate: 2, Tenants: []string{"demo-a", "demo-b"}},
			Audit:  Audit{CheckpointInterval: 10 * time.Second, VerifyInterval: audit.DefaultVerifyInterval},
			Reload: Reload{PollInterval: 2 * time.Second},
			Log:    Log{Level: "info", Format: "text"},
		},
	}
}

// DefaultListen is where `ordo serve` listens unless told otherwise: the
// loopback interface only.
const DefaultListen = "127.0.0.1:8080"

// File returns the configuration file Load read ("" for none).
func (c *Config) File() string { return c.file }

// FileHash returns the SHA-256 of the file's bytes as Load parsed them.
func (c *Config) FileHash() [32]byte { return c.fileHash }
