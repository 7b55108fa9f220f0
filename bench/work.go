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
func measureWork(maxWorkers int) func(ctx context.Context, p params, sys, url string) (result, error) {
	return func(ctx context.Context, p params, sys, url string) (result, error) {
		s, err := openSystem(ctx, sys, url)
		if err != nil {
			return result{}, err
		}
		defer s.close()
		n := scaled(workJobs, p.Scale, 1000)
		wc := p.Tuning.work(sys, maxWorkers)
		r := result{Jobs: n, Settings: s.settings(wc)}
		var completed atomic.Int64
		done := make(chan struct{})
		h := hooks{onComplete: func() {
			if completed.Add(1) == int64(n) {
				close(done)
			}
		}}
		err = window(p, &r, func() error {
			if err := s.start(ctx, wc, h); err != nil {
				return err
			}
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("%d of %d jobs completed: %w", completed.Load(), n, ctx.Err())
			}
		})
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if serr := s.stop(stopCtx); err == nil {
			err = serr
		}
		r.PeakRSSMB = peakRSSMB()
		if err == nil && completed.Load() != int64(n) {
			err = fmt.Errorf("%d completions seen for %d jobs", completed.Load(), n)
		}
		return r, err
	}
}
