package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	steadyJobs      = 1_000_000
	steadyRate      = 5_000           // jobs/s
	steadyRetention = time.Minute     // of finished jobs, both systems, at scale 1
	steadyWarm      = 2 * time.Minute // at scale 1: the retention, River's 30 s cleaner interval and a margin
	steadySample    = 5 * time.Second // table sizes, at scale 1
	steadyTick      = 100 * time.Millisecond
)

// measureSteady: a client with 100 workers works 1,000,000 jobs (times
// -scale, at least 10,000) produced at 5,000 jobs/s with the bulk path (a
// batch every 100 ms), with retention on: finished jobs are deleted one
// minute after they finished (River: CompletedJobRetentionPeriod and its
// cancelled and discarded twins, its cleaner running every 30 s; ordo:
// worker.Config.Retention, pruned by the leader's maintenance every 5 s).
// Every 5 s the harness samples the size of each system's tables with
// their indexes and TOAST (pg_total_relation_size): the job state (River's
// river_job; ordo's job_state and legacy jobs) and, for ordo, the log,
// which is the audit record and is never pruned. Reported: the state's
// size when the warm-up (2 minutes, times -scale) ends, its largest size
// after that, and its size at the end, so a table that keeps growing
// shows. The timed window is from the client's start to the last
// completion.
func measureSteady(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	n := scaled(steadyJobs, p.Scale, 10_000)
	scale := func(d, least time.Duration) time.Duration { return max(time.Duration(float64(d)*p.Scale), least) }
	retention, warm, every := scale(steadyRetention, time.Second), scale(steadyWarm, 2*time.Second), scale(steadySample, 500*time.Millisecond)
	wc := p.Tuning.config("work_100", sys, 100)
	wc.Retention = retention
	r := result{Jobs: n, Extra: map[string]float64{}, Settings: fmt.Sprintf(
		"%d jobs/s in batches every %v, retention %v, warm-up %v, sizes sampled every %v; %s",
		steadyRate, steadyTick, retention, warm, every, s.settings(wc))}

	conn, err := connectAdmin(ctx, url)
	if err != nil {
		return r, err
	}
	defer conn.Close(context.Background())

	var errs errorLog
	c := newCompletions(n)
	var (
		mu      sync.Mutex
		samples []sizeSample
	)
	sampleErr := make(chan error, 1)
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	var begin time.Time
	err = window(p, &r, func() error {
		begin = time.Now()
		if err := s.start(ctx, wc, c.hooks(&errs)); err != nil {
			return err
		}
		sampling.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
				sz, err := tableSizes(ctx, conn)
				if err != nil {
					sampleErr <- err
					return
				}
				sz.at = time.Since(begin)
				mu.Lock()
				samples = append(samples, sz)
				mu.Unlock()
			}
		})
		defer func() {
			close(stopSampling)
			sampling.Wait()
		}()
		if err := produceBatches(ctx, s, n, begin); err != nil {
			return err
		}
		r.Extra["produced_s"] = time.Since(begin).Seconds()
		r.Extra["backlog"] = float64(n - int(c.got.Load()))
		return c.awaitNoting(ctx, s, &r)
	})
	err = finishClient(s, &r, &errs, err)
	select {
	case e := <-sampleErr:
		if err == nil {
			err = fmt.Errorf("sampling table sizes: %w", e)
		}
	default:
	}
	if err != nil {
		return r, err
	}
	final, err := tableSizes(ctx, conn)
	if err != nil {
		return r, err
	}
	mu.Lock()
	defer mu.Unlock()
	var atWarm *sizeSample
	maxAfter := int64(0)
	for i := range samples {
		if samples[i].at < warm {
			continue
		}
		if atWarm == nil {
			atWarm = &samples[i]
		}
		maxAfter = max(maxAfter, samples[i].state)
	}
	const mb = 1 << 20
	r.Extra["state_end_mb"], r.Extra["log_end_mb"] = float64(final.state)/mb, float64(final.log)/mb
	if atWarm == nil {
		r.Notes = append(r.Notes, fmt.Sprintf("the run ended before the %v warm-up: no steady-state sizes", warm))
		return r, nil
	}
	r.Extra["state_warm_mb"], r.Extra["state_max_mb"] = float64(atWarm.state)/mb, float64(maxAfter)/mb
	r.Extra["log_warm_mb"] = float64(atWarm.log) / mb
	r.Extra["growth_pct"] = 100 * float64(maxAfter-atWarm.state) / float64(atWarm.state)
	return r, nil
}

// produceBatches inserts jobs 0..n-1 at steadyRate with the bulk path:
// every tick, the jobs that have come due since the last.
func produceBatches(ctx context.Context, s system, n int, begin time.Time) error {
	tick := time.NewTicker(steadyTick)
	defer tick.Stop()
	sent := 0
	buf := make([]benchArgs, 0, steadyRate)
	for sent < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		due := min(int(time.Since(begin).Seconds()*steadyRate), n)
		for sent < due {
			buf = buf[:0]
			for ; sent < due && len(buf) < cap(buf); sent++ {
				buf = append(buf, benchArgs{Seq: int64(sent)})
			}
			if err := s.insertBatch(ctx, buf); err != nil {
				return fmt.Errorf("inserting jobs up to %d: %w", sent-1, err)
			}
		}
	}
	return nil
}
