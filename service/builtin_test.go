package service_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

type hookRequest struct {
	path, body, contentType, sig, jobID, attempt string
}

// hookServer is the target of http jobs, on loopback: it fails the first
// request to /flaky with 503 and answers everything else 204.
type hookServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []hookRequest
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{r.URL.Path, string(b), r.Header.Get("Content-Type"), r.Header.Get("X-Sig"),
			r.Header.Get("Ordo-Job-Id"), r.Header.Get("Ordo-Attempt")})
		n := 0
		for _, x := range h.reqs {
			if x.path == r.URL.Path {
				n++
			}
		}
		h.mu.Unlock()
		switch {
		case r.URL.Path == "/redirect":
			http.Redirect(w, r, "http://not-allowed.example/", http.StatusFound)
		case r.URL.Path == "/flaky" && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func TestBuiltinHTTPKind(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		hook := newHookServer(t)
		host := mustHost(t, hook.URL)
		events, wc := workerEvents(func(c *worker.Config) { c.PollInterval = 5 * time.Millisecond })
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Worker.Enabled = true
			c.Ordo.Worker.HttpKind.AllowedHosts = []string{host}
		}, service.Options{WorkerConfig: wc})
		// status asserts the job's status once the event that set it was
		// seen.
		status := func(id, want string) {
			t.Helper()
			if got := e.statusOf(id); got != want {
				t.Fatalf("job %s is %s, want %s", id, got, want)
			}
		}
		if err := e.Svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}

		// Fails with 503, is retried after its backoff, then succeeds.
		flaky := e.enqueue("acme", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{
			"url": hook.URL + "/flaky", "body": map[string]any{"hello": "world"}, "headers": map[string]string{"X-Sig": "abc"}}})
		events.Await(t, "the first attempt to fail", func(ev worker.Event) bool {
			return jobEvent(worker.EventJobFailed, flaky)(ev) && ev.Retried && ev.Lease.Attempt == 1
		})
		status(flaky, "scheduled")
		show := e.call("GET", "/v1/tenants/acme/jobs/"+flaky, acmeToken, nil).must(t, http.StatusOK)
		if show.body["last_error"] != "POST "+hook.URL+"/flaky: 503 Service Unavailable" || show.body["attempts"] != 1.0 {
			t.Fatalf("after the first attempt: %s", show.raw)
		}
		e.Wall.Advance(time.Hour) // past any first backoff
		events.Await(t, "the retry to succeed", jobEvent(worker.EventJobSucceeded, flaky))
		status(flaky, "succeeded")
		reqs := hook.requests()
		if len(reqs) != 2 {
			t.Fatalf("hook got %d requests: %+v", len(reqs), reqs)
		}
		for i, r := range reqs {
			if r.body != `{"hello":"world"}` || r.contentType != "application/json" || r.sig != "abc" || r.jobID != flaky || r.attempt != []string{"1", "2"}[i] {
				t.Fatalf("request %d: %+v", i, r)
			}
		}

		// A string body is sent as is.
		text := e.enqueue("acme", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{"url": hook.URL + "/text", "body": "plain words"}})
		events.Await(t, "the text job to succeed", jobEvent(worker.EventJobSucceeded, text))
		status(text, "succeeded")
		if r := hook.requests()[2]; r.body != "plain words" || r.contentType != "text/plain; charset=utf-8" {
			t.Fatalf("text request: %+v", r)
		}

		// A redirect to a host not allowed fails at once, without retry.
		redir := e.enqueue("acme", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{"url": hook.URL + "/redirect"}})
		events.Await(t, "the redirected job to fail", jobEvent(worker.EventJobFailed, redir))
		status(redir, "failed")
		// So does a job written past the API's check (here, straight into
		// the queue) whose host is not allowed.
		res, err := e.Svc.Queue().Enqueue(context.Background(), queue.Job{TenantID: "acme", Kind: "http", Payload: []byte(`{"url":"http://127.0.0.2:9/"}`)})
		if err != nil {
			t.Fatal(err)
		}
		events.Await(t, "the job to a host not allowed to fail", jobEvent(worker.EventJobFailed, res.JobID.String()))
		status(res.JobID.String(), "failed")
		for _, id := range []string{redir, res.JobID.String()} {
			show := e.call("GET", "/v1/tenants/acme/jobs/"+id, acmeToken, nil).must(t, http.StatusOK)
			if show.body["attempts"] != 1.0 {
				t.Fatalf("a job the allow-list forbids was retried: %s", show.raw)
			}
		}
		if n := len(hook.requests()); n != 4 { // flaky twice, text, redirect
			t.Fatalf("hook got %d requests", n)
		}

		// The allow-list changes on a running service.
		next := testConfig(dbURL)
		next.Ordo.Worker.Enabled = true
		if r := e.Svc.Reload(context.Background(), next); r.Err != nil || len(r.Applied) != 1 || r.Applied[0] != "Ordo:Worker:HttpKind:AllowedHosts" {
			t.Fatalf("reload: %+v", r)
		}
		r := e.call("POST", "/v1/tenants/acme/jobs", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{"url": hook.URL + "/x"}})
		if r.status != http.StatusBadRequest || r.errField() != "payload.url" {
			t.Fatalf("after emptying the allow-list: %d %s", r.status, r.raw)
		}
		noop := e.enqueue("acme", acmeToken, map[string]any{"kind": "noop", "payload": map[string]any{}})
		events.Await(t, "the noop job to succeed", jobEvent(worker.EventJobSucceeded, noop))
		status(noop, "succeeded")
	})
}

// Issue 14: a bare host in the allow-list allows the scheme's port only,
// and a failed request's last_error tells neither the kind of network
// failure nor the query string (a port and DNS oracle, and secrets).
func TestHTTPKindAllowListAndErrors(t *testing.T) {
	t.Run("allow-list", func(t *testing.T) {
		// Enqueue only: the service is not started, so nothing is called.
		e := newEnv(t, testdb.SQLiteURL(t), func(c *config.Config) {
			c.Ordo.Worker.HttpKind.AllowedHosts = []string{"hooks.example", "api.example:8443", "*.corp.example"}
		}, service.Options{})
		for _, c := range []struct {
			url     string
			allowed bool
		}{
			{"http://hooks.example/x", true},
			{"https://hooks.example/x", true},
			{"http://hooks.example:80/x", true},
			{"http://hooks.example:8080/x", false},
			{"https://hooks.example:22/x", false},
			{"https://api.example:8443/x", true},
			{"https://api.example/x", false},
			{"http://a.corp.example/x", true},
			{"http://a.corp.example:6379/x", false},
		} {
			r := e.call("POST", "/v1/tenants/acme/jobs", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{"url": c.url}})
			if c.allowed && r.status != http.StatusCreated || !c.allowed && (r.status != http.StatusBadRequest || r.errField() != "payload.url") {
				t.Errorf("enqueue to %s: %d %s; allowed: %v", c.url, r.status, r.raw, c.allowed)
			}
		}
	})
	t.Run("last_error", func(t *testing.T) {
		// A loopback port this test opened and closed: nothing listens.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		events, wc := workerEvents(func(c *worker.Config) { c.PollInterval = 5 * time.Millisecond })
		e := newEnv(t, testdb.SQLiteURL(t), func(c *config.Config) {
			c.Ordo.Worker.Enabled = true
			c.Ordo.Worker.HttpKind.AllowedHosts = []string{closed}
		}, service.Options{WorkerConfig: wc})
		if err := e.Svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		id := e.enqueue("acme", acmeToken, map[string]any{"kind": "http", "payload": map[string]any{"url": "http://" + closed + "/hook?token=secret"}})
		events.Await(t, "the request to fail", jobEvent(worker.EventJobFailed, id))
		show := e.call("GET", "/v1/tenants/acme/jobs/"+id, acmeToken, nil).must(t, http.StatusOK)
		want := "POST http://" + closed + "/hook: the request failed before a response (connection or protocol error)"
		if show.body["last_error"] != want {
			t.Fatalf("last_error %q; want %q", show.body["last_error"], want)
		}
	})
}

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestDemoTrickleStopsWithTheServer(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		events, wc := workerEvents(func(c *worker.Config) { c.PollInterval = 5 * time.Millisecond })
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Worker.Enabled = true
			c.Ordo.Demo = config.Demo{Enabled: true, Rate: 500, Tenants: []string{"demo-a", "demo-b"}}
		}, service.Options{WorkerConfig: wc})
		if err := e.Svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		perTenant := func() map[string]int {
			out := map[string]int{}
			rows, err := e.Raw.Query("SELECT tenant_id, count(*) FROM " + e.Prefix + "scheduler_log GROUP BY tenant_id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var tenant string
				var n int
				if err := rows.Scan(&tenant, &n); err != nil {
					t.Fatal(err)
				}
				out[tenant] = n
			}
			return out
		}
		// The built-in noop worker runs the demo's jobs: five have run for
		// each tenant, so at least five were enqueued for each.
		ran := map[string]int{}
		events.Await(t, "5 demo jobs of each tenant to succeed", func(ev worker.Event) bool {
			if ev.Type == worker.EventJobSucceeded && ev.Lease.Kind == service.KindNoop {
				ran[ev.Lease.TenantID]++
			}
			return ran["demo-a"] >= 5 && ran["demo-b"] >= 5
		})
		if c := perTenant(); c["demo-a"] < 5 || c["demo-b"] < 5 {
			t.Fatalf("demo jobs logged per tenant: %v, want 5 or more each", c)
		}
		var n int
		if err := e.Raw.QueryRow("SELECT count(*) FROM " + e.Prefix + "job_state WHERE status = 'succeeded'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no demo job succeeded in job_state")
		}
		if err := e.Svc.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		stopped := perTenant()
		// Shutdown returned after the trickle's goroutine ended: nothing
		// more is enqueued. (Reading twice is the whole check: no sleep
		// could make it stronger.)
		if again := perTenant(); again["demo-a"] != stopped["demo-a"] || again["demo-b"] != stopped["demo-b"] {
			t.Fatalf("jobs were enqueued after shutdown: %v then %v", stopped, again)
		}
		if len(stopped) != 2 {
			t.Fatalf("tenants %v", stopped)
		}
	})
}
