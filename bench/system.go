package main

import (
	"context"
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
}

// hooks are called by a running client: onStart as a handler starts
// (from the handler's goroutine), onComplete once a job's completion is
// stored (River: its completed event; ordo: its succeeded event). Either
// may be nil.
type hooks struct {
	onStart    func(benchArgs)
	onComplete func()
}

// system is one job queue under test, open on one database.
type system interface {
	// insertBatch inserts jobs with the system's bulk path.
	insertBatch(ctx context.Context, jobs []benchArgs) error
	// insert inserts one job with the system's single-job path.
	insert(ctx context.Context, job benchArgs) error
	// start starts a client working bench_noop jobs.
	start(ctx context.Context, wc workConfig, h hooks) error
	// stop stops the client start started.
	stop(ctx context.Context) error
	// settings describes how wc is applied, for the report.
	settings(wc workConfig) string
	close()
}

const (
	systemRiver = "river"
	systemOrdo  = "ordo"
)

// openSystem opens the named system on the database at url, whose schema
// prepare has created.
func openSystem(ctx context.Context, name, url string) (system, error) {
	if name == systemRiver {
		return openRiver(ctx, url)
	}
	return openOrdo(ctx, url, "bench", ordoHlcOnly)
}

// prepareSystem creates the named system's schema in the (fresh) database
// at url.
func prepareSystem(ctx context.Context, name, url string) error {
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
