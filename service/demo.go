package service

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/queue"
)

// runDemo enqueues noop jobs at Ordo:Demo:Rate per second, across the
// demo tenants in turn (two partitions each), until ctx ends.
func (s *Service) runDemo(ctx context.Context, d config.Demo) {
	interval := time.Duration(float64(time.Second) / d.Rate)
	tick := time.NewTicker(max(interval, time.Millisecond))
	defer tick.Stop()
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
		if _, err := s.q.Enqueue(ctx, j); err != nil && ctx.Err() == nil {
			s.log.Warn("demo: enqueue failed", "error", err)
		}
	}
}
