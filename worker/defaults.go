package worker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ordo-sched/ordo/hlc"
)

// Defaults of Config, in one place.
const (
	// DefaultLeaderName is the leadership a client's maintenance runs under.
	DefaultLeaderName = "ordo.maintenance"
	// DefaultMaxWorkers caps the running jobs of a client.
	DefaultMaxWorkers = 100
	// DefaultLeaseFor is the length of a job's lease; the heartbeat extends
	// it every DefaultLeaseFor/heartbeatsPerLease.
	DefaultLeaseFor = 30 * time.Second
	// DefaultTimeout bounds an attempt of a kind that sets no timeout.
	DefaultTimeout = time.Minute
	// DefaultTimeoutGrace is how long a handler whose context ended may
	// take to return before its job is handed back.
	DefaultTimeoutGrace = 5 * time.Second
	// DefaultPollInterval is how often each queue looks for jobs without
	// being woken.
	DefaultPollInterval = time.Second
	// DefaultFetchCooldown is the least time between two fetches of one
	// queue.
	DefaultFetchCooldown = 100 * time.Millisecond
	// DefaultMaintenanceInterval is how often the leader rescues expired
	// leases and enqueues periodic jobs; a leadership lease lasts
	// leaderTTLIntervals of it.
	DefaultMaintenanceInterval = 5 * time.Second

	// outcomeRetryFirst and outcomeRetryMax pace the retries of an
	// outcome write that failed for a reason other than the lease (the
	// database restarting, a dropped connection): doubling from the first
	// to the most, within finalizeTimeout. The most is short so that the
	// write lands soon after the database is back, before a rescue could
	// hand the job to another worker.
	outcomeRetryFirst = 50 * time.Millisecond
	outcomeRetryMax   = time.Second

	heartbeatsPerLease = 3
	leaderTTLIntervals = 3
	minLeaseFor        = time.Second
)

// withDefaults returns cfg with every zero field that has a default set to
// it; clock is the queue's, the default Now. It does not validate.
func (cfg Config) withDefaults(clock *hlc.Clock) Config {
	if cfg.MaxWorkers == 0 {
		cfg.MaxWorkers = DefaultMaxWorkers
	}
	if cfg.LeaseFor == 0 {
		cfg.LeaseFor = DefaultLeaseFor
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = cfg.LeaseFor / heartbeatsPerLease
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = DefaultTimeout
	}
	if cfg.TimeoutGrace == 0 {
		cfg.TimeoutGrace = DefaultTimeoutGrace
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	switch {
	case cfg.FetchCooldown == 0:
		cfg.FetchCooldown = DefaultFetchCooldown
	case cfg.FetchCooldown < 0: // negative turns the cooldown off
		cfg.FetchCooldown = 0
	}
	if cfg.MaintenanceInterval == 0 {
		cfg.MaintenanceInterval = DefaultMaintenanceInterval
	}
	if cfg.LeaderTTL == 0 {
		cfg.LeaderTTL = leaderTTLIntervals * cfg.MaintenanceInterval
	}
	if cfg.LeaderName == "" {
		cfg.LeaderName = DefaultLeaderName
	}
	if cfg.ID == "" {
		cfg.ID = defaultID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.UnixMilli(clock.Wall()) }
	}
	return cfg
}

// validate returns every problem of cfg's own fields (after withDefaults);
// NewClient adds those of its queues and periodic jobs.
func (cfg Config) validate() []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if cfg.MaxWorkers < 0 {
		bad("MaxWorkers = %d, want > 0", cfg.MaxWorkers)
	}
	if cfg.LeaseFor < minLeaseFor {
		bad("LeaseFor = %v, want at least 1s", cfg.LeaseFor)
	}
	if cfg.HeartbeatInterval <= 0 || cfg.HeartbeatInterval >= cfg.LeaseFor {
		bad("HeartbeatInterval = %v, want more than 0 and less than LeaseFor (%v)", cfg.HeartbeatInterval, cfg.LeaseFor)
	}
	if cfg.TimeoutGrace < 0 {
		bad("TimeoutGrace = %v, want >= 0", cfg.TimeoutGrace)
	}
	if cfg.PollInterval < 0 {
		bad("PollInterval = %v, want > 0", cfg.PollInterval)
	}
	if cfg.MaintenanceInterval < 0 {
		bad("MaintenanceInterval = %v, want > 0", cfg.MaintenanceInterval)
	}
	if cfg.LeaderTTL <= cfg.MaintenanceInterval {
		bad("LeaderTTL = %v, want more than MaintenanceInterval (%v), or the leader loses its lease between renewals", cfg.LeaderTTL, cfg.MaintenanceInterval)
	}
	return problems
}
