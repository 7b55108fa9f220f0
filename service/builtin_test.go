package service_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
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
		if err := e.svc.Start(context.Background()); err != nil {
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
		e.wall.Advance(time.Hour) // past any first backoff
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
		res, err := e.svc.Queue().Enqueue(context.Background(), queue.Job{TenantID: "acme", Kind: "http", Payload: []byte(`{"url":"http://127.0.0.2:9/"}`)})
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
		if r := e.svc.Reload(context.Background(), next); r.Err != nil || len(r.Applied) != 1 || r.Applied[0] != "Ordo:Worker:HttpKind:AllowedHosts" {
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

func mustHost(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
