package service_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

// serviceFile is a whole configuration file for the reload test; hlc is
// the guide's Hlc section body, extra more Ordo keys.
func serviceFile(dbURL, hlc, extra string) string {
	return fmt.Sprintf(`Scheduler:
  Queue:
    Hlc:
%s
Ordo:
  NodeId: reload-node
  Database:
    Url: %q
  Http:
    Listen: "127.0.0.1:0"
%s
  Auth:
    Tokens:
      - Name: acme-ci
        Tenant: acme
        Sha256: %s
  Worker:
    PollInterval: 5ms
  Reload:
    PollInterval: 5ms
  Log:
    Level: error
`, hlc, dbURL, extra, service.HashToken(acmeToken))
}

// TestReloadChangesModeWithoutLosingOrDoublingJobs walks the guide's
// phases and the rollback on a running service, by rewriting its
// configuration file, while jobs are enqueued through the API and run by
// its workers: every job runs exactly once.
func TestReloadChangesModeWithoutLosingOrDoublingJobs(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		path := filepath.Join(t.TempDir(), "ordo.yaml")
		replace := func(text string) { t.Helper(); servicetest.WriteAtomically(t, path, text) }
		write := func(hlc, extra string) { t.Helper(); replace(serviceFile(dbURL, hlc, extra)) }
		write("      EnableHlcOrdering: false\n      DualWriteMode: false", "")
		src := config.Source{File: path}
		cfg, err := config.Load(src)
		if err != nil {
			t.Fatal(err)
		}

		var mu sync.Mutex
		runs := map[string]int{}
		reloads := make(chan service.ReloadResult, 100)
		hup := make(chan struct{})
		events, wc := workerEvents(func(c *worker.Config) { c.FetchCooldown = time.Millisecond })
		svc, err := service.New(context.Background(), cfg, service.Options{
			Reload: &src, ReloadSignal: hup, LogOutput: io.Discard,
			OnReload: func(r service.ReloadResult) { reloads <- r },
			Workers: func(w *worker.Workers) error {
				return worker.AddFuncSafely(w, "count", func(ctx context.Context, l *queue.Lease) error {
					mu.Lock()
					runs[l.JobID.String()]++
					mu.Unlock()
					return nil
				})
			},
			WorkerConfig: wc,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = svc.Shutdown(context.Background()) }()
		e := &env{&servicetest.Node{T: t, Svc: svc, URL: svc.URL()}}
		e.Raw, e.Prefix = servicetest.OpenRaw(t, dbURL)

		// The producer enqueues through the API until told to stop, and
		// records how many it has enqueued after each, or its error.
		type produced struct {
			n   int64
			err error
		}
		progress := testsignal.New[produced]()
		var enqueued sync.Map
		var count atomic.Int64
		stop := make(chan struct{})
		producerDone := make(chan error, 1)
		go func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					producerDone <- nil
					return
				default:
				}
				r := e.callNoFatal("POST", "/v1/tenants/acme/jobs", acmeToken, map[string]any{"kind": "count", "partition": []string{"", "p1"}[n%2], "payload": map[string]any{"n": n}})
				if r.err != nil || (r.status != 201) {
					err := fmt.Errorf("enqueue %d: %v %d %s", n, r.err, r.status, r.raw)
					progress.Record(produced{err: err})
					producerDone <- err
					return
				}
				enqueued.Store(r.body["job_id"].(string), true)
				progress.Record(produced{n: count.Add(1)})
			}
		}()
		more := func(k int64) {
			t.Helper()
			target := count.Load() + k
			p := progress.Await(t, fmt.Sprintf("%d more enqueues", k), func(p produced) bool { return p.err != nil || p.n >= target })
			if p.err != nil {
				t.Fatal(p.err)
			}
		}
		expect := func(mode queue.Mode) service.ReloadResult {
			t.Helper()
			select {
			case r := <-reloads:
				if r.Err != nil || r.Mode != mode {
					t.Fatalf("reload: %+v, want mode %s", r, mode)
				}
				return r
			case <-time.After(testsignal.Timeout):
				t.Fatalf("no reload to %s", mode)
			}
			return service.ReloadResult{}
		}

		more(20)
		phases := []struct {
			hlc  string
			mode queue.Mode
		}{
			{"      EnableHlcOrdering: false\n      DualWriteMode: true", queue.ModeDualWrite},                                // phase 1
			{"      EnableHlcOrdering: true\n      DualWriteMode: true\n      VerifyOnDequeue: true", queue.ModeDualWriteHlc}, // phase 3
			{"      EnableHlcOrdering: true\n      DualWriteMode: false", queue.ModeHlcOnly},                                  // phase 4
			{"      EnableHlcOrdering: false\n      DualWriteMode: false", queue.ModeLegacy},                                  // rollback
			{"      EnableHlcOrdering: true\n      DualWriteMode: false", queue.ModeHlcOnly},                                  // straight back
		}
		for i, p := range phases {
			extra := ""
			if i == 1 {
				extra = "    MaxBatchJobs: 50" // needs a restart
			}
			write(p.hlc, extra)
			r := expect(p.mode)
			if svc.Queue().Mode() != p.mode {
				t.Fatalf("queue mode %s, want %s", svc.Queue().Mode(), p.mode)
			}
			if i == 1 && (len(r.NeedRestart) != 1 || r.NeedRestart[0] != "Ordo:Http:MaxBatchJobs") {
				t.Fatalf("restart-only change not reported: %+v", r)
			}
			more(20)
		}
		// SIGHUP reloads even an unchanged file.
		hup <- struct{}{}
		if r := expect(queue.ModeHlcOnly); len(r.Applied) != 0 {
			t.Fatalf("unchanged reload applied %v", r.Applied)
		}
		// A bad file is refused; the service goes on in its mode.
		replace("Scheduler: {Queue: {Hlc: {MaxClockDriftMs: 0}}}\n")
		select {
		case r := <-reloads:
			if r.Err == nil || !strings.Contains(r.Err.Error(), "MaxClockDriftMs = 0") || r.Mode != queue.ModeHlcOnly {
				t.Fatalf("bad file: %+v", r)
			}
		case <-time.After(testsignal.Timeout):
			t.Fatal("bad file not reported")
		}
		more(10)
		close(stop)
		if err := <-producerDone; err != nil {
			t.Fatal(err)
		}

		total := 0
		pending := map[string]bool{}
		enqueued.Range(func(id, _ any) bool { total++; pending[id.(string)] = true; return true })
		// Every job succeeds (the event follows the write of its outcome).
		events.Await(t, fmt.Sprintf("all %d jobs to succeed", total), func(ev worker.Event) bool {
			if ev.Type == worker.EventJobSucceeded {
				delete(pending, ev.Lease.JobID.String())
			}
			return len(pending) == 0
		})
		// Nothing is left that could run again, on either side.
		if n := e.unfinished(); n != 0 {
			t.Fatalf("%d unfinished jobs after every job succeeded:\n%s", n, e.unfinishedRows())
		}
		mu.Lock()
		defer mu.Unlock()
		for id, n := range runs {
			if n != 1 {
				t.Errorf("job %s ran %d times", id, n)
			}
			if _, ok := enqueued.Load(id); !ok {
				t.Errorf("job %s ran but was never enqueued", id)
			}
		}
		if len(runs) != total || total < 110 {
			t.Fatalf("%d jobs enqueued, %d ran", total, len(runs))
		}
	})
}
