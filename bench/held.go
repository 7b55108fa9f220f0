package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

const (
	heldRate     = 300             // jobs/s
	heldDuration = 2 * time.Minute // at scale 1
	heldWindows  = 4               // 30 s each at scale 1
	heldMinimum  = 4 * time.Second // the shortest scaled duration
)

// measureHeldHorizon: a client with 100 workers works jobs enqueued at 300
// jobs/s (one per call, as in latency) while another connection holds a
// REPEATABLE READ transaction open, so that no row version deleted or
// updated meanwhile can be vacuumed or pruned: the xmin horizon is held.
// First one second of production (not measured) without the transaction;
// then the transaction starts (BEGIN ISOLATION LEVEL REPEATABLE READ;
// SELECT 1, and its backend_xmin is checked), and production goes on for
// 2 minutes (times -scale, at least 4 s), split into 4 windows by enqueue
// time. Per window: enqueue-call start to handler start, p50 and p99, and
// throughput (handler starts per second within the window). The
// transaction ends once every job has started, or at the deadline (half
// the duration, at least 30 s, after the last enqueue): a job not started
// by then counts with its latency at the deadline (a lower bound) and is
// noted.
func measureHeldHorizon(ctx context.Context, p params, sys, url string) (result, error) {
	s, err := openSystem(ctx, sys, url)
	if err != nil {
		return result{}, err
	}
	defer s.close()
	dur := max(time.Duration(float64(heldDuration)*p.Scale), heldMinimum)
	win := dur / heldWindows
	warm := heldRate // one second
	total := int(float64(heldRate) * dur.Seconds())
	wc := p.Tuning.config("held_horizon", sys, 100)
	r := result{Extra: map[string]float64{}, Settings: fmt.Sprintf(
		"%d jobs/s for %v in %d windows of %v (+1 s warm-up before the transaction) from %d producer goroutines, REPEATABLE READ transaction held on another connection; %s",
		heldRate, dur, heldWindows, win, latencyProducers, s.settings(wc))}

	var (
		mu      sync.Mutex
		enqAt   = make([]int64, total) // by seq - warm; 0: not sent
		startAt = make([]int64, total) // 0: not started
		started int
	)
	allStarted := make(chan struct{})
	warmDone := make(chan struct{})
	var warmStarted int
	var errs errorLog
	h := hooks{onError: errs.add, onStart: func(a benchArgs) {
		now := time.Now().UnixNano()
		mu.Lock()
		defer mu.Unlock()
		if a.Seq < int64(warm) {
			if warmStarted++; warmStarted == warm {
				close(warmDone)
			}
			return
		}
		i := a.Seq - int64(warm)
		if i >= int64(total) || startAt[i] != 0 {
			return
		}
		startAt[i] = now
		if started++; started == total {
			close(allStarted)
		}
	}}
	if err := s.start(ctx, wc, h); err != nil {
		return r, err
	}
	defer func() { _ = stopClient(s) }()

	// Warm-up, without the held transaction.
	if _, err := produce(ctx, s, 0, warm, heldRate, time.Now(), nil); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	select {
	case <-warmDone:
	case <-time.After(30 * time.Second):
		return r, fmt.Errorf("warm-up jobs not started 30 s after their enqueue")
	case <-ctx.Done():
		return r, ctx.Err()
	}

	held, err := connectAdmin(ctx, url)
	if err != nil {
		return r, err
	}
	defer held.Close(context.Background())
	if _, err := held.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return r, err
	}
	if _, err := held.Exec(ctx, "SELECT 1"); err != nil {
		return r, err
	}
	var xmin *string
	if err := held.QueryRow(ctx, "SELECT backend_xmin::text FROM pg_stat_activity WHERE pid = pg_backend_pid()").Scan(&xmin); err != nil {
		return r, err
	}
	if xmin == nil {
		return r, fmt.Errorf("the held transaction has no backend_xmin: nothing holds the horizon")
	}
	r.Settings += "; held snapshot's backend_xmin " + *xmin
	heldSince := time.Now()

	var (
		sent            int
		begin, deadline time.Time
		wait            = max(dur/2, 30*time.Second)
	)
	err = window(p, &r, func() error {
		begin = time.Now()
		var err error
		sent, err = produce(ctx, s, int64(warm), total, heldRate, begin, func(seq, at int64) {
			enqAt[seq-int64(warm)] = at // one writer per seq; read after produce returns
		})
		if err != nil {
			return err
		}
		r.Extra["enqueue_rate"] = float64(sent) / time.Since(begin).Seconds()
		deadline = time.Now().Add(wait)
		select {
		case <-allStarted:
			deadline = time.Now()
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	})
	if _, rerr := held.Exec(context.Background(), "ROLLBACK"); rerr != nil && err == nil {
		err = rerr
	}
	r.Extra["held_s"] = time.Since(heldSince).Seconds()
	r.PeakRSSMB = peakRSSMB()
	r.Notes = errs.notes()
	if err != nil {
		return r, err
	}

	mu.Lock()
	defer mu.Unlock()
	all := make([]time.Duration, 0, total)
	lats := make([][]time.Duration, heldWindows)
	starts := make([]int, heldWindows)
	unstarted := 0
	for i := range total {
		if enqAt[i] == 0 {
			continue
		}
		end := startAt[i]
		if end == 0 {
			unstarted++
			end = deadline.UnixNano()
		} else if w := int((end - begin.UnixNano()) / int64(win)); w >= 0 && w < heldWindows {
			starts[w]++
		}
		lat := time.Duration(end - enqAt[i])
		w := min(int((enqAt[i]-begin.UnixNano())/int64(win)), heldWindows-1)
		lats[w] = append(lats[w], lat)
		all = append(all, lat)
	}
	if unstarted > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d jobs had not started %v after the last enqueue; counted with their latency at that time (a lower bound)",
			unstarted, sent, wait))
	}
	if rate := r.Extra["enqueue_rate"]; rate < 0.95*heldRate {
		r.Notes = append(r.Notes, fmt.Sprintf("enqueued at %.0f jobs/s, not %d: the producer fell behind, so the last window holds the jobs enqueued late", rate, heldRate))
	}
	r.Jobs = sent
	r.Throughput = float64(started) / deadline.Sub(begin).Seconds()
	r.P50Ms, r.P99Ms = percentile(all, 50), percentile(all, 99)
	r.Extra["unstarted"] = float64(unstarted)
	r.Extra["max_ms"] = percentile(all, 100)
	for w := range heldWindows {
		r.Extra[fmt.Sprintf("w%d_p50_ms", w)] = percentile(lats[w], 50)
		r.Extra[fmt.Sprintf("w%d_p99_ms", w)] = percentile(lats[w], 99)
		r.Extra[fmt.Sprintf("w%d_rate", w)] = float64(starts[w]) / win.Seconds()
	}
	return r, nil
}
