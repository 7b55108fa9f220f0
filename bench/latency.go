package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	latencyRate      = 1000             // jobs/s
	latencyDuration  = 10 * time.Second // at scale 1, measured
	latencyWarmup    = time.Second      // before it, not measured
	latencyProducers = 32
)

// measureLatency runs a client with 100 workers while a ticker-paced
// producer enqueues 1,000 jobs/s, one per call, from a pool of goroutines;
// each job carries the time its enqueue call started, and the handler
// records the time from there to its own start. Jobs enqueued during the
// first second are a warm-up and not counted.
func measureLatency(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	dur := max(time.Duration(float64(latencyDuration)*p.Scale), 2*time.Second)
	total := int(float64(latencyRate) * (latencyWarmup + dur).Seconds())
	wc := p.Tuning.config("latency", sys, 100)
	r := result{Settings: fmt.Sprintf("%d jobs/s for %v (+%v warm-up) from %d producer goroutines; %s",
		latencyRate, dur, latencyWarmup, latencyProducers, s.settings(wc))}

	var (
		mu        sync.Mutex
		lats      []time.Duration
		started   atomic.Int64
		measureAt atomic.Int64 // Unix nanos: jobs enqueued from here on count
	)
	allStarted := make(chan struct{})
	var errs errorLog
	h := hooks{onError: errs.add, onStart: func(a benchArgs) {
		now := time.Now().UnixNano()
		if a.EnqueuedAt >= measureAt.Load() {
			mu.Lock()
			lats = append(lats, time.Duration(now-a.EnqueuedAt))
			mu.Unlock()
		}
		if started.Add(1) == int64(total) {
			close(allStarted)
		}
	}}
	measureAt.Store(time.Now().Add(time.Hour).UnixNano())
	if err := s.start(ctx, wc, h); err != nil {
		return r, err
	}
	defer func() { _ = stopClient(s) }()

	var sent int
	var rate float64
	err = window(p, &r, func() error {
		begin := time.Now()
		measureAt.Store(begin.Add(latencyWarmup).UnixNano())
		var err error
		sent, err = produce(ctx, s, 0, total, latencyRate, begin, nil)
		rate = float64(sent) / time.Since(begin).Seconds()
		if err != nil {
			return err
		}
		select {
		case <-allStarted:
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%d of %d jobs started 30s after the last enqueue", started.Load(), total)
		}
	})
	r.PeakRSSMB = peakRSSMB()
	r.Notes = errs.notes()
	mu.Lock()
	defer mu.Unlock()
	r.Jobs = sent       // the CPU figures are per job enqueued and worked
	r.Throughput = rate // achieved enqueue rate
	r.P50Ms, r.P99Ms = percentile(lats, 50), percentile(lats, 99)
	r.Extra = map[string]float64{"max_ms": percentile(lats, 100), "measured": float64(len(lats))}
	return r, err
}

// produce enqueues total jobs (seq first, first+1, ...) at rate per second
// from begin on: a 1 ms ticker hands out the jobs that are due to a pool
// of producer goroutines, each of which stamps a job with the start of its
// own enqueue call (and passes the stamp to sent, if not nil, before the
// call).
func produce(ctx context.Context, s system, first int64, total, rate int, begin time.Time, sent func(seq, at int64)) (int, error) {
	due := make(chan int64, total)
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range latencyProducers {
		wg.Go(func() {
			for seq := range due {
				a := benchArgs{Seq: seq, EnqueuedAt: time.Now().UnixNano()}
				if sent != nil {
					sent(seq, a.EnqueuedAt)
				}
				if err := s.insert(ctx, a); err != nil {
					errOnce.Do(func() { firstErr = err })
				}
			}
		})
	}
	tick := time.NewTicker(time.Millisecond)
	n := 0
	for n < total {
		<-tick.C
		want := min(int(time.Since(begin).Seconds()*float64(rate)), total)
		for ; n < want; n++ {
			due <- first + int64(n)
		}
	}
	tick.Stop()
	close(due)
	wg.Wait()
	return n, firstErr
}
