package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ordo-sched/ordo/metrics"
)

// Defaults of Config, in one place.
const (
	// DefaultMaxAttempts bounds a job's runs, retries included, when the
	// job sets none.
	DefaultMaxAttempts = 25
	// DefaultMaxPayloadBytes refuses larger payloads (1 MiB).
	DefaultMaxPayloadBytes = 1 << 20
	// DefaultMaxBatch caps one group-commit transaction of enqueues or of
	// transitions.
	DefaultMaxBatch = 1000

	// rescueBatch and reconcileBatch bound one statement of the rescuer,
	// the backfill and the drain, which loop until a short batch: large
	// enough to amortise a round trip, small enough to hold locks briefly.
	rescueBatch    = 500
	reconcileBatch = 500
)

// withDefaults returns cfg with every zero field that has a default set
// to it. It does not validate.
func (cfg Config) withDefaults() Config {
	cfg.Options = cfg.Options.withDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics, _ = metrics.New(nil)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DefaultMaxAttempts == 0 {
		cfg.DefaultMaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxPayloadBytes == 0 {
		cfg.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return cfg
}

// validate checks a Config after withDefaults.
func (cfg Config) validate() error {
	if cfg.Backend == nil {
		return errors.New("queue: Config.Backend is required")
	}
	if cfg.Clock == nil {
		return errors.New("queue: Config.Clock is required")
	}
	if err := cfg.Options.Validate(); err != nil {
		return err
	}
	if cfg.DefaultMaxAttempts < 1 {
		return fmt.Errorf("queue: DefaultMaxAttempts = %d, want at least 1", cfg.DefaultMaxAttempts)
	}
	return nil
}
