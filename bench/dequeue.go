package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/queue"
)

const (
	dequeueJobs  = 1_000_000
	dequeueIters = 200 // dequeues per batch size and mode, at scale 1
	dequeueWarm  = 5   // untimed dequeues per batch size and mode first
)

var dequeueBatches = []int{10, 100}

// Both read modes write both sides (dual-write), so a job leased by one is
// leased on the other side too and the two modes take turns on one queue.
var (
	ordoLegacyReads = queue.Options{DualWriteMode: true}
	ordoHlcReads    = queue.Options{EnableHlcOrdering: true, DualWriteMode: true}
)

// prepareDequeue fills the queue in dual-write mode, so both the legacy
// table (scheduler.jobs) and the HLC side (scheduler_log, job_state) hold
// every job.
func prepareDequeue(ctx context.Context, p params, _, url string) error {
	s, err := openOrdo(ctx, url, "bench", ordoLegacyReads)
	if err != nil {
		return err
	}
	defer s.close()
	n := scaled(dequeueJobs, p.Scale, 1000)
	return insertAll(ctx, s, 0, n, min(bulkBatch, n))
}

// measureDequeue times q.Dequeue of batches of 10 and of 100 with legacy
// reads and with HLC reads, through two queues open on the same database
// (one per mode), alternating between them (and which goes first) on every
// round so that the queue's drift affects both alike. Leased jobs are left
// running (lease of one hour) in both modes.
func measureDequeue(ctx context.Context, p params, _, url string) (result, error) {
	legacy, err := openOrdo(ctx, url, "bench-legacy", ordoLegacyReads)
	if err != nil {
		return result{}, err
	}
	defer legacy.close()
	hlcq, err := openOrdo(ctx, url, "bench-hlc", ordoHlcReads)
	if err != nil {
		return result{}, err
	}
	defer hlcq.close()
	modes := []struct {
		name string
		q    *queue.Queue
	}{{"legacy", legacy.q}, {"hlc", hlcq.q}}

	iters := scaled(dequeueIters, p.Scale, 20)
	r := result{Extra: map[string]float64{}, Settings: fmt.Sprintf(
		"%d jobs queued in dual-write mode; per batch size, %d timed dequeues per mode (after %d untimed), alternating legacy reads (%s) and HLC reads (%s); leases of 1h, jobs not completed",
		scaled(dequeueJobs, p.Scale, 1000), iters, dequeueWarm, legacy.q.Mode(), hlcq.q.Mode())}
	err = window(p, &r, func() error {
		for _, b := range dequeueBatches {
			times := map[string][]time.Duration{}
			for i := range dequeueWarm + iters {
				for k := range modes {
					m := modes[(i+k)%len(modes)]
					start := time.Now()
					leases, err := m.q.Dequeue(ctx, queue.DequeueOptions{Limit: b, LeaseFor: time.Hour})
					d := time.Since(start)
					if err != nil {
						return fmt.Errorf("%s dequeue of %d: %w", m.name, b, err)
					}
					if len(leases) != b {
						return fmt.Errorf("%s dequeue of %d leased %d jobs: the queue ran dry", m.name, b, len(leases))
					}
					if i >= dequeueWarm {
						times[m.name] = append(times[m.name], d)
					}
					r.Jobs += len(leases)
				}
			}
			for _, m := range modes {
				r.Extra[fmt.Sprintf("%s_%d_p50_ms", m.name, b)] = percentile(times[m.name], 50)
				r.Extra[fmt.Sprintf("%s_%d_p99_ms", m.name, b)] = percentile(times[m.name], 99)
			}
		}
		return nil
	})
	r.PeakRSSMB = peakRSSMB()
	return r, err
}
