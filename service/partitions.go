package service

import (
	"context"
	"errors"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
)

// LogPartitionsLeadershipName is the duty of making scheduler_log's
// partitions ahead (driver.Leadership): one node does it at a time.
const LogPartitionsLeadershipName = "ordo.log_partitions"

// startLogPartitions makes scheduler_log's partitions of the coming
// periods now and every logPartitionsInterval until ctx ends, on a
// backend that partitions the log (driver.LogPartitioner: PostgreSQL),
// when Ordo:Database:LogPartitionPeriod is not 0.
func (s *Service) startLogPartitions(ctx context.Context, cfg *config.Config) {
	if _, ok := s.db.(driver.LogPartitioner); !ok || cfg.Ordo.Database.LogPartitionPeriod <= 0 {
		return
	}
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		for {
			wait := logPartitionsInterval
			if _, err := s.EnsureLogPartitionsNow(ctx); err != nil && ctx.Err() == nil {
				// Most often the default partition's lock was not had in
				// time (a busy moment, such as the service's start).
				wait = logPartitionsRetry
				s.log.Warn("making scheduler_log partitions failed; trying again later", "error", err, "retry_in", wait)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// EnsureLogPartitionsNow makes the partitions of scheduler_log the coming
// periods need (driver.LogPartitioner), as the service otherwise does
// every logPartitionsInterval, and logs what it made and the ranges it
// left to the default partition. It does nothing on a backend without
// partitions, with Ordo:Database:LogPartitionPeriod 0, or while another
// node holds the duty (LogPartitionsLeadershipName).
func (s *Service) EnsureLogPartitionsNow(ctx context.Context) (driver.LogPartitions, error) {
	cfg := s.cfg.Load()
	period := cfg.Ordo.Database.LogPartitionPeriod
	p, ok := s.db.(driver.LogPartitioner)
	if !ok || period <= 0 {
		return driver.LogPartitions{}, nil
	}
	now := s.now()
	led, err := s.db.TryLead(ctx, driver.LeadParams{Name: LogPartitionsLeadershipName, Holder: cfg.Ordo.NodeId,
		Until: now.Add(2 * logPartitionsInterval), Now: now})
	switch {
	case errors.Is(err, driver.ErrNotSupported):
	case err != nil || !led:
		return driver.LogPartitions{}, err
	}
	res, err := p.EnsureLogPartitions(ctx, now, period)
	if err != nil {
		return res, err
	}
	for _, name := range res.Created {
		s.log.Info("made a scheduler_log partition", "partition", name, "period", period)
	}
	for _, r := range res.LeftToDefault {
		s.log.Warn("no scheduler_log partition for a range: its entries go to scheduler_log_default, and leave it row by row when archived",
			"from", r[0], "to", r[1])
	}
	return res, nil
}
