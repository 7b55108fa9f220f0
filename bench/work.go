package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

const workJobs = 100_000

// prepareWork queues the work scenarios' jobs with the system's bulk path,
// before the child process that works them starts.
func prepareWork(ctx context.Context, p params, sys, url string) error {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return err
	}
	defer s.close()
	n := scaled(workJobs, p.Scale, 1000)
	return insertAll(ctx, s, 0, n, min(bulkBatch, n))
}

// measureWork works the queued jobs to completion with maxWorkers: timed
// from the client's start until the last completion is observed.
func measureWork(scenario string, maxWorkers int) func(ctx context.Context, p params, sys, url string) (result, error) {
	return func(ctx context.Context, p params, sys, url string) (result, error) {
		s, err := openSystem(ctx, sys, url)
		if err != nil {
			return result{}, err
		}
		defer s.close()
		n := scaled(workJobs, p.Scale, 1000)
		wc := p.Tuning.config(scenario, sys, maxWorkers)
		r := result{Jobs: n, Settings: s.settings(wc)}
		var completed atomic.Int64
		var errs errorLog
		done := make(chan struct{})
		h := hooks{onError: errs.add, onComplete: func() {
			if completed.Add(1) == int64(n) {
				close(done)
			}
		}}
		err = window(p, &r, func() error {
			if err := s.start(ctx, wc, h); err != nil {
				return err
			}
			// Completion events are the measure. Only when they stall
			// for a second are the stored completions counted, which
			// guards against a client that loses events (then reported)
			// without loading the server while events flow.
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			var seen int64
			for {
				select {
				case <-done:
					return nil
				case <-tick.C:
					now := completed.Load()
					stalled := now == seen
					seen = now
					if !stalled {
						continue
					}
					if stored, err := s.completed(ctx); err == nil && stored >= n {
						r.Notes = append(r.Notes, fmt.Sprintf("only %d completion events for %d jobs: the last completion was found by counting stored completions (up to 1 s late)", completed.Load(), n))
						return nil
					}
				case <-ctx.Done():
					return fmt.Errorf("%d of %d jobs completed: %w", completed.Load(), n, ctx.Err())
				}
			}
		})
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := s.stop(stopCtx); err == nil {
			err = serr
		}
		r.PeakRSSMB = peakRSSMB()
		r.Notes = append(r.Notes, errs.notes()...)
		return r, err
	}
}
