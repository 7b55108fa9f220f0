package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

const (
	bulkJobs      = 100_000
	bulkBatch     = 10_000
	singleJobs    = 20_000
	singleWorkers = 32
)

// measureBulkEnqueue: 100,000 jobs in batches of 10,000 through the bulk
// path (River InsertManyFast, ordo EnqueueMany with every job chained),
// after one untimed warm-up batch of 100.
func measureBulkEnqueue(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	if err := insertAll(ctx, s, warmupSeq, 100, 100); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	n := scaled(bulkJobs, p.Scale, 1000)
	batch := min(bulkBatch, n)
	r := result{Jobs: n, Settings: fmt.Sprintf("%d jobs in batches of %d", n, batch)}
	err = window(p, &r, func() error { return insertAll(ctx, s, 0, n, batch) })
	r.PeakRSSMB = peakRSSMB()
	return r, err
}

// measureSingleEnqueue: 20,000 jobs, one per call, from 32 goroutines
// (River Insert, ordo Enqueue), after an untimed warm-up of two inserts
// per goroutine, which also opens the pool's connections.
func measureSingleEnqueue(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	warm := int64(warmupSeq)
	if err := fanOut(singleWorkers, func() error {
		for range 2 {
			if err := s.insert(ctx, benchArgs{Seq: atomic.AddInt64(&warm, 1)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	n := scaled(singleJobs, p.Scale, 1000)
	r := result{Jobs: n, Settings: fmt.Sprintf("%d jobs, one per call, from %d goroutines", n, singleWorkers)}
	var next atomic.Int64
	err = window(p, &r, func() error {
		return fanOut(singleWorkers, func() error {
			for {
				seq := next.Add(1) - 1
				if seq >= int64(n) {
					return nil
				}
				if err := s.insert(ctx, benchArgs{Seq: seq}); err != nil {
					return err
				}
			}
		})
	})
	r.PeakRSSMB = peakRSSMB()
	return r, err
}

// fanOut runs fn in n goroutines and returns the first error.
func fanOut(n int, fn func() error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if err := fn(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
