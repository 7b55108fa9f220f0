package service_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

// backends runs f once per backend, each on a fresh database.
func backends(t *testing.T, f func(t *testing.T, dbURL string)) { testdb.EachBackend(t, f) }

const (
	acmeToken  = servicetest.AcmeToken
	adminToken = servicetest.AdminToken
)

// env is a running service on one database (its HTTP API served by an
// httptest server).
type env struct{ *servicetest.Node }

// testConfig is the shared test node's configuration with a small
// payload limit, so that the limit's tests need no large bodies.
func testConfig(dbURL string) *config.Config {
	cfg := servicetest.Config(dbURL)
	cfg.Ordo.Http.MaxPayloadBytes = 1024
	return cfg
}

func newEnv(t *testing.T, dbURL string, mutate func(*config.Config), opts service.Options) *env {
	t.Helper()
	cfg := testConfig(dbURL)
	if mutate != nil {
		mutate(cfg)
	}
	wall := servicetest.Wall()
	if opts.Wall == nil {
		opts.Wall = wall
	}
	if opts.LogOutput == nil {
		opts.LogOutput = io.Discard
	}
	svc, err := service.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() {
		srv.Close()
		_ = svc.Shutdown(context.Background())
	})
	return &env{servicetest.NewNode(t, svc, srv.URL, dbURL, wall)}
}

// unfinished counts the rows of both sides that could still run.
func (e *env) unfinished() int {
	e.T.Helper()
	total := 0
	for _, table := range []string{"jobs", "job_state"} {
		var n int
		if err := e.Raw.QueryRow("SELECT count(*) FROM " + e.Prefix + table + " WHERE status IN ('pending', 'scheduled', 'running')").Scan(&n); err != nil {
			e.T.Fatal(err)
		}
		total += n
	}
	return total
}

// unfinishedRows describes the jobs unfinished() counts, for a failure.
func (e *env) unfinishedRows() string {
	e.T.Helper()
	var b strings.Builder
	for _, table := range []string{"jobs", "job_state"} {
		id := "id"
		if table == "job_state" {
			id = "job_id"
		}
		rows, err := e.Raw.Query("SELECT CAST(" + id + " AS TEXT), status, attempts, COALESCE(CAST(lease_token AS TEXT), '') FROM " + e.Prefix + table +
			" WHERE status IN ('pending', 'scheduled', 'running')")
		if err != nil {
			e.T.Fatal(err)
		}
		for rows.Next() {
			var jid, status, token string
			var attempts int
			if err := rows.Scan(&jid, &status, &attempts, &token); err != nil {
				e.T.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s %s attempts=%d lease=%s\n", table, jid, status, attempts, token)
		}
		rows.Close()
	}
	return b.String()
}

// rows counts the rows of the tables a write would touch.
func (e *env) rows() map[string]int {
	e.T.Helper()
	out := map[string]int{}
	for _, table := range []string{"jobs", "job_state", "scheduler_log", "chain_heads", "api_tokens"} {
		var n int
		if err := e.Raw.QueryRow("SELECT count(*) FROM " + e.Prefix + table).Scan(&n); err != nil {
			e.T.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// jobStates returns the status of every job, by id (HLC side where it
// exists, else legacy).
func (e *env) statusOf(id string) string {
	e.T.Helper()
	var st string
	err := e.Raw.QueryRow("SELECT status FROM "+e.Prefix+"job_state WHERE CAST(job_id AS TEXT) = "+e.Ph(1), id).Scan(&st)
	if err == sql.ErrNoRows {
		err = e.Raw.QueryRow("SELECT status FROM "+e.Prefix+"jobs WHERE CAST(id AS TEXT) = "+e.Ph(1), id).Scan(&st)
	}
	if err != nil {
		e.T.Fatal(err)
	}
	return st
}

// response is a decoded API answer.
type response struct {
	status int
	body   map[string]any
	raw    []byte
}

func (r response) errField() string {
	if eobj, ok := r.body["error"].(map[string]any); ok {
		f, _ := eobj["field"].(string)
		return f
	}
	return ""
}

func (r response) errCode() string {
	if eobj, ok := r.body["error"].(map[string]any); ok {
		c, _ := eobj["code"].(string)
		return c
	}
	return ""
}

// call makes a request with token (none if ""); body is marshalled unless
// it is a string or []byte, sent as is.
func (e *env) call(method, path, token string, body any) response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.T.Fatal(err)
	}
	r := response{status: resp.StatusCode, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.T.Fatalf("%s %s: body is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return r
}

type callResult struct {
	response
	err error
}

// callNoFatal is call for goroutines other than the test's.
func (e *env) callNoFatal(method, path, token string, body any) callResult {
	j, err := json.Marshal(body)
	if err != nil {
		return callResult{err: err}
	}
	req, err := http.NewRequest(method, e.URL+path, bytes.NewReader(j))
	if err != nil {
		return callResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return callResult{err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return callResult{err: err}
	}
	r := callResult{response: response{status: resp.StatusCode, raw: raw}}
	r.err = json.Unmarshal(raw, &r.body)
	return r
}

// must fails unless the response has status want.
func (r response) must(t *testing.T, want int) response {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

func (e *env) enqueue(tenant, token string, job map[string]any) string {
	e.T.Helper()
	r := e.call("POST", "/v1/tenants/"+tenant+"/jobs", token, job)
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		e.T.Fatalf("enqueue: %d %s", r.status, r.raw)
	}
	return r.body["job_id"].(string)
}

// workerEvents records every event of the service's worker client: it
// returns rec and a WorkerConfig that applies adjust (if any) and then
// chains rec after the client's own OnEvent (the service's metrics hook,
// which therefore has seen an event by the time rec has).
func workerEvents(adjust func(*worker.Config)) (*testsignal.Recorder[worker.Event], func(*worker.Config)) {
	rec := testsignal.New[worker.Event]()
	rec.Format = func(e worker.Event) string {
		if e.Type == worker.EventLeaseExtended {
			return ""
		}
		return fmt.Sprintf("%s job=%s kind=%s tenant=%s attempt=%d err=%v retried=%v", e.Type, e.Lease.JobID, e.Lease.Kind, e.Lease.TenantID, e.Lease.Attempt, e.Err, e.Retried)
	}
	return rec, func(c *worker.Config) {
		if adjust != nil {
			adjust(c)
		}
		prev := c.OnEvent
		c.OnEvent = func(e worker.Event) {
			if prev != nil {
				prev(e)
			}
			rec.Record(e)
		}
	}
}

// jobEvent matches events of type typ for the job whose id is id.
func jobEvent(typ worker.EventType, id string) func(worker.Event) bool {
	return func(e worker.Event) bool { return e.Type == typ && e.Lease.JobID.String() == id }
}
