package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// dequeueDepths are dequeue_depth's queue depths at scale 1, with the
// least each may scale down to.
var dequeueDepths = []struct{ jobs, floor int }{{10_000, 1000}, {100_000, 2000}, {1_000_000, 20_000}}

const (
	depthBatch = 10  // jobs per fetch
	depthIters = 200 // timed fetches per depth at scale 1
)

// depthLabel names a depth in the report (its index, as depths scale).
func depthLabel(i int) string { return fmt.Sprintf("depth%d", i) }

// measureDequeueDepth: the latency of one fetch of 10 jobs with 10,000,
// 100,000 and 1,000,000 jobs available, by the statement each system's
// client fetches with: ordo's Queue.Dequeue (public API), River's
// JobGetAvailable through its driver's executor (riverdriver, exported by
// River's modules but documented as internal; its client calls it through
// the producer with the same parameters). The queue is filled (bulk path,
// untimed) up to each depth, then VACUUM ANALYZE, then 5 untimed and 200
// timed fetches; fetched jobs stay running (never completed), so a depth
// also holds the earlier depths' fetched jobs as running rows. The fill
// runs in this child process, so its peak RSS includes it.
func measureDequeueDepth(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	// VACUUM runs on a connection kept for the whole run: a backend that
	// exits between two CPU samples would take its CPU out of the server's
	// sum.
	admin, err := pgx.Connect(ctx, adminURL(url))
	if err != nil {
		return result{}, err
	}
	defer admin.Close(context.Background())
	iters := scaled(depthIters, p.Scale, 20)
	r := result{Extra: map[string]float64{}}
	var depths []string
	filled, available := 0, 0
	for i, d := range dequeueDepths {
		depth := scaled(d.jobs, p.Scale, d.floor)
		if add := depth - available; add > 0 {
			if err := insertAll(ctx, s, filled, add, min(bulkBatch, add)); err != nil {
				return r, fmt.Errorf("filling to %d: %w", depth, err)
			}
			filled += add
			available = depth
		}
		if _, err := admin.Exec(ctx, "VACUUM ANALYZE"); err != nil {
			return r, err
		}
		var times []time.Duration
		before := sampleCPU(p.Postmaster)
		for k := range dequeueWarm + iters {
			start := time.Now()
			got, err := s.fetch(ctx, depthBatch)
			el := time.Since(start)
			if err != nil {
				return r, fmt.Errorf("fetch at depth %d: %w", available, err)
			}
			if got != depthBatch {
				return r, fmt.Errorf("fetch of %d at depth %d got %d jobs", depthBatch, available, got)
			}
			available -= got
			r.Jobs += got
			if k >= dequeueWarm {
				times = append(times, el)
				r.Seconds += el.Seconds()
			}
		}
		proc, server := cpuDelta(before, sampleCPU(p.Postmaster))
		r.ProcCPU += proc
		if server < 0 || r.ServerCPU < 0 {
			r.ServerCPU = -1
		} else {
			r.ServerCPU += server
		}
		l := depthLabel(i)
		r.Extra[l+"_jobs"] = float64(depth)
		r.Extra[l+"_p50_ms"] = percentile(times, 50)
		r.Extra[l+"_p99_ms"] = percentile(times, 99)
		depths = append(depths, fmt.Sprint(depth))
	}
	r.PeakRSSMB = peakRSSMB()
	how := "Queue.Dequeue(Limit 10, LeaseFor 1h)"
	if sys == systemRiver {
		how = "riverpgxv5 executor JobGetAvailable(queue default, MaxToLock 10, MaxAttemptedBy 100), as River's producer calls it"
	}
	r.Settings = fmt.Sprintf("depths %s jobs available (bulk-filled, VACUUM ANALYZE before each); %d timed fetches of %d per depth after %d untimed; %s; fetched jobs left running",
		strings.Join(depths, ", "), iters, depthBatch, dequeueWarm, how)
	return r, nil
}
