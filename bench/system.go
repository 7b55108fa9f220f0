package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// benchArgs is the job both systems run: a no-op. Seq makes every job's
// payload unique (ordo derives a job's id from its payload, so equal
// payloads would be one job); EnqueuedAt, set in the latency scenario, is
// when the enqueue call started (Unix nanoseconds).
type benchArgs struct {
	Seq        int64 `json:"seq"`
	EnqueuedAt int64 `json:"at,omitempty"`
}

// Kind names the job kind for both River (river.JobArgs) and ordo
// (worker.Args).
func (benchArgs) Kind() string { return "bench_noop" }

// workConfig is a client's tuning for one scenario.
type workConfig struct {
	MaxWorkers    int
	FetchCooldown time.Duration
	PollInterval  time.Duration
	// Retention, when set, is how long finished jobs are kept before the
	// system's cleaner deletes them (every final state alike).
	Retention time.Duration
}

// hooks are called by a running client: onStart as a handler starts
// (from the handler's goroutine), onComplete once a job's completion is
// stored (River: its completed event; ordo: its succeeded event). Either
// may be nil.
type hooks struct {
	onStart    func(benchArgs)
	onComplete func()
	// onError receives the client's error-level log messages.
	onError func(msg string)
}

// system is one job queue under test, open on one database.
type system interface {
	// insertBatch inserts jobs with the system's bulk path.
	insertBatch(ctx context.Context, jobs []benchArgs) error
	// insert inserts one job with the system's single-job path.
	insert(ctx context.Context, job benchArgs) error
	// start starts a client working bench_noop jobs.
	start(ctx context.Context, wc workConfig, h hooks) error
	// fetch takes up to limit available jobs for work with the statement
	// the system's client fetches with, outside any client (the jobs stay
	// running), and returns how many it got.
	fetch(ctx context.Context, limit int) (int, error)
	// completed counts the jobs whose completion is stored.
	completed(ctx context.Context) (int, error)
	// stop stops the client start started.
	stop(ctx context.Context) error
	// settings describes how wc is applied, for the report.
	settings(wc workConfig) string
	close()
}

// stopClient stops the client s.start started, giving its running jobs 30
// s to finish: a scenario's own deadline may be over by then.
func stopClient(s system) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.stop(ctx)
}

const (
	systemRiver = "river"
	systemOrdo  = "ordo"
)

// openSystem opens the named system on the database at url (a PostgreSQL
// URL, or sqlite:PATH for a SQLite file), whose schema prepare has created.
func openSystem(ctx context.Context, name, url string) (system, error) {
	if name == systemRiver && isSQLite(url) {
		return openRiverSQLite(ctx, url)
	}
	if name == systemRiver {
		return openRiver(ctx, url)
	}
	return openOrdo(ctx, url, "bench", ordoHlcOnly)
}

// prepareSystem creates the named system's schema in the (fresh) database
// at url.
func prepareSystem(ctx context.Context, name, url string) error {
	if name == systemRiver && isSQLite(url) {
		return migrateRiverSQLite(ctx, url)
	}
	if name == systemRiver {
		return migrateRiver(ctx, url)
	}
	s, err := openOrdo(ctx, url, "bench", ordoHlcOnly) // ordo.Open migrates
	if err != nil {
		return err
	}
	s.close()
	return nil
}

// errorLogger passes the message and attributes of every record at level
// error or above to onError (nil: discard everything).
func errorLogger(onError func(string)) *slog.Logger {
	if onError == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(errorHandler{onError})
}

type errorHandler struct{ fn func(string) }

func (h errorHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }

func (h errorHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.fn(b.String())
	return nil
}

func (h errorHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h errorHandler) WithGroup(string) slog.Handler      { return h }
