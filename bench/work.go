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
		var errs errorLog
		c := newCompletions(n)
		err = window(p, &r, func() error {
			if err := s.start(ctx, wc, c.hooks(&errs)); err != nil {
				return err
			}
			return c.awaitNoting(ctx, s, &r)
		})
		return r, finishClient(s, &r, &errs, err)
	}
}

// awaitNoting is await, with its note added to r.
func (c *completions) awaitNoting(ctx context.Context, s system, r *result) error {
	note, err := c.await(ctx, s)
	if note != "" {
		r.Notes = append(r.Notes, note)
	}
	return err
}

// finishClient stops the client and records the run's peak RSS and the
// client's errors in r; it returns err, or the stop's error.
func finishClient(s system, r *result, errs *errorLog, err error) error {
	if serr := stopClient(s); err == nil {
		err = serr
	}
	r.PeakRSSMB = peakRSSMB()
	r.Notes = append(r.Notes, errs.notes()...)
	return err
}

// completions counts a client's completion events up to n.
type completions struct {
	n    int
	got  atomic.Int64
	done chan struct{}
}

func newCompletions(n int) *completions { return &completions{n: n, done: make(chan struct{})} }

func (c *completions) hooks(errs *errorLog) hooks {
	return hooks{onError: errs.add, onComplete: func() {
		if c.got.Add(1) == int64(c.n) {
			close(c.done)
		}
	}}
}

// await returns once n completions are seen. Completion events are the
// measure. Only when they stall for a second are the stored completions
// counted, which guards against a client that loses events (then noted)
// without loading the server while events flow.
func (c *completions) await(ctx context.Context, s system) (note string, err error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var seen int64
	for {
		select {
		case <-c.done:
			return "", nil
		case <-tick.C:
			now := c.got.Load()
			stalled := now == seen
			seen = now
			if !stalled {
				continue
			}
			if stored, err := s.completed(ctx); err == nil && stored >= c.n {
				return fmt.Sprintf("only %d completion events for %d jobs: the last completion was found by counting stored completions (up to 1 s late)", c.got.Load(), c.n), nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("%d of %d jobs completed: %w", c.got.Load(), c.n, ctx.Err())
		}
	}
}

// workToCompletion starts a client on s, waits until n jobs are
// completed and stops it.
func workToCompletion(ctx context.Context, s system, wc workConfig, n int, errs *errorLog) (note string, err error) {
	c := newCompletions(n)
	if err := s.start(ctx, wc, c.hooks(errs)); err != nil {
		return "", err
	}
	note, err = c.await(ctx, s)
	if serr := stopClient(s); err == nil {
		err = serr
	}
	return note, err
}
