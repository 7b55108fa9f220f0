package service_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// The guide's metrics, with the guide's types.
var guideMetrics = map[string]string{
	"scheduler_hlc_enqueues_total":              "counter",
	"scheduler_hlc_enqueue_deduplicated_total":  "counter",
	"scheduler_hlc_enqueue_duration_seconds":    "histogram",
	"scheduler_hlc_dequeues_total":              "counter",
	"scheduler_hlc_dequeued_entries_total":      "counter",
	"scheduler_chain_verifications_total":       "counter",
	"scheduler_chain_verification_issues_total": "counter",
	"scheduler_batch_snapshots_created_total":   "counter",
}

func metricValue(t *testing.T, text, series string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestMetricsHealthAndReadiness(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		done := make(chan string, 10)
		events, wc := workerEvents(func(c *worker.Config) { c.PollInterval = 10 * time.Millisecond })
		e := newEnv(t, dbURL, func(c *config.Config) { c.Ordo.Worker.Enabled = true }, service.Options{
			WorkerConfig: wc,
			Workers: func(w *worker.Workers) error {
				worker.AddFunc(w, "count.me", func(ctx context.Context, l *queue.Lease) error {
					done <- l.JobID.String()
					return nil
				})
				return nil
			},
		})
		if err := e.Svc.Start(context.Background()); err != nil { // worker client; listener unused
			t.Fatal(err)
		}
		e.enqueue("acme", acmeToken, map[string]any{"kind": "count.me", "payload": map[string]any{"n": 1}})
		e.enqueue("acme", acmeToken, map[string]any{"kind": "later", "payload": map[string]any{}, "run_at": "2030-01-01T00:00:00Z"})
		e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "unhandled", "payload": map[string]any{}})
		id := <-done
		// The service's metrics hook sees the event before the recorder.
		events.Await(t, "the job to succeed", jobEvent(worker.EventJobSucceeded, id))
		if _, text := get(t, e.URL+"/metrics"); metricValue(t, text, `ordo_worker_events_total{event="job_succeeded",kind="count.me"}`) != "1" {
			t.Fatalf("the job's success is not counted:\n%s", servicetest.MetricLines(text, "ordo_worker_events_total"))
		}
		e.call("POST", "/v1/tenants/acme/verify", acmeToken, nil).must(t, http.StatusOK)

		status, text := get(t, e.URL+"/metrics")
		if status != http.StatusOK {
			t.Fatalf("/metrics: %d", status)
		}
		for name, typ := range guideMetrics {
			if !strings.Contains(text, "# TYPE "+name+" "+typ+"\n") {
				t.Errorf("/metrics lacks %s of type %s", name, typ)
			}
		}
		for series, want := range map[string]string{
			`scheduler_hlc_enqueues_total`:                                  "3",
			`scheduler_chain_verifications_total{result="valid"}`:           "1",
			`ordo_jobs{state="pending",tenant="globex"}`:                    "1",
			`ordo_jobs{state="scheduled",tenant="acme"}`:                    "1",
			`ordo_jobs{state="pending",tenant="acme"}`:                      "0",
			`ordo_worker_events_total{event="job_started",kind="count.me"}`: "1",
			`ordo_queue_mode{mode="hlc-reads"}`:                             "1",
			`ordo_queue_mode{mode="legacy"}`:                                "0",
			`ordo_queue_option{option="DualWriteMode"}`:                     "1",
			`ordo_hlc_max_clock_drift_seconds`:                              "60",
			`ordo_hlc_clock_offset_seconds`:                                 "0",
		} {
			if got := metricValue(t, text, series); got != want {
				t.Errorf("%s = %q, want %s", series, got, want)
			}
		}
		if !strings.Contains(text, `ordo_http_requests_total{code="201",route="POST /v1/tenants/{tenant}/jobs"} 3`) {
			t.Errorf("request counter missing:\n%s", servicetest.MetricLines(text, "ordo_http_requests_total"))
		}

		if status, body := get(t, e.URL+"/healthz"); status != http.StatusOK || !strings.Contains(body, `"ok"`) {
			t.Fatalf("/healthz: %d %s", status, body)
		}
		if status, body := get(t, e.URL+"/readyz"); status != http.StatusOK || !strings.Contains(body, `"ready"`) {
			t.Fatalf("/readyz: %d %s", status, body)
		}
		// A migration goes missing (a restored backup, say): not ready.
		if _, err := e.Raw.Exec("DELETE FROM ordo_schema_migrations WHERE version_id = (SELECT max(version_id) FROM ordo_schema_migrations)"); err != nil {
			t.Fatal(err)
		}
		if status, body := get(t, e.URL+"/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "pending") {
			t.Fatalf("/readyz with a pending migration: %d %s", status, body)
		}
	})
}

// Issue 14: /metrics names every tenant, so beyond loopback it needs an
// admin token unless Ordo:Http:MetricsAuth says otherwise.
func TestMetricsAuth(t *testing.T) {
	for _, c := range []struct {
		listen, auth        string
		none, tenant, admin int
	}{
		{"127.0.0.1:8080", config.MetricsAuthAuto, 200, 200, 200},
		{"[::1]:8080", config.MetricsAuthAuto, 200, 200, 200},
		{"0.0.0.0:8080", config.MetricsAuthAuto, 401, 403, 200},
		{":8080", config.MetricsAuthAuto, 401, 403, 200},
		{"127.0.0.1:8080", config.MetricsAuthToken, 401, 403, 200},
		{"0.0.0.0:8080", config.MetricsAuthNone, 200, 200, 200},
	} {
		t.Run(c.listen+" "+c.auth, func(t *testing.T) {
			// Not started: the handler is served on loopback by the test;
			// only the configured address decides.
			e := newEnv(t, testdb.SQLiteURL(t), func(cfg *config.Config) {
				cfg.Ordo.Http.Listen, cfg.Ordo.Http.MetricsAuth = c.listen, c.auth
			}, service.Options{})
			for _, tc := range []struct {
				token string
				want  int
			}{{"", c.none}, {acmeToken, c.tenant}, {adminToken, c.admin}} {
				r := e.call("GET", "/metrics", tc.token, nil)
				if r.status != tc.want {
					t.Errorf("GET /metrics with token %q: %d, want %d", tc.token, r.status, tc.want)
				}
				if r.status == 200 && !strings.Contains(string(r.raw), "scheduler_hlc_enqueues_total") {
					t.Errorf("GET /metrics: 200 without the metrics: %.200s", r.raw)
				}
			}
		})
	}
}
