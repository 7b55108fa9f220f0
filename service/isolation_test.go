package service_test

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/service"
)

// routeCase is one request on a tenant route that the caller would be
// allowed to make on its own tenant.
type routeCase struct {
	method string
	path   string // with {tenant} and {id}
	body   any
	usesID bool
}

// everyRoute gives, for every pattern of Service.Routes, a well-formed
// request. The test fails if a route is missing, so a new route cannot
// escape the isolation checks.
func everyRoute(t *testing.T, svc *service.Service) map[string]routeCase {
	lease := map[string]any{"lease_token": uuid.NewString()}
	cases := map[string]routeCase{
		"POST /v1/tenants/{tenant}/jobs":               {"POST", "/v1/tenants/{tenant}/jobs", map[string]any{"kind": "k", "payload": map[string]any{"new": true}}, false},
		"POST /v1/tenants/{tenant}/jobs/batch":         {"POST", "/v1/tenants/{tenant}/jobs/batch", map[string]any{"jobs": []any{map[string]any{"kind": "k", "payload": map[string]any{"batch": true}}}}, false},
		"GET /v1/tenants/{tenant}/jobs":                {"GET", "/v1/tenants/{tenant}/jobs", nil, false},
		"GET /v1/tenants/{tenant}/jobs/{id}":           {"GET", "/v1/tenants/{tenant}/jobs/{id}", nil, true},
		"POST /v1/tenants/{tenant}/jobs/{id}/cancel":   {"POST", "/v1/tenants/{tenant}/jobs/{id}/cancel", nil, true},
		"POST /v1/tenants/{tenant}/jobs/{id}/retry":    {"POST", "/v1/tenants/{tenant}/jobs/{id}/retry", nil, true},
		"DELETE /v1/tenants/{tenant}/jobs/{id}":        {"DELETE", "/v1/tenants/{tenant}/jobs/{id}", nil, true},
		"POST /v1/tenants/{tenant}/jobs/{id}/complete": {"POST", "/v1/tenants/{tenant}/jobs/{id}/complete", lease, true},
		"POST /v1/tenants/{tenant}/jobs/{id}/fail":     {"POST", "/v1/tenants/{tenant}/jobs/{id}/fail", lease, true},
		"POST /v1/tenants/{tenant}/jobs/{id}/extend":   {"POST", "/v1/tenants/{tenant}/jobs/{id}/extend", lease, true},
		"POST /v1/tenants/{tenant}/dequeue":            {"POST", "/v1/tenants/{tenant}/dequeue", map[string]any{"limit": 10}, false},
		"GET /v1/tenants/{tenant}/stats":               {"GET", "/v1/tenants/{tenant}/stats", nil, false},
		"POST /v1/tenants/{tenant}/verify":             {"POST", "/v1/tenants/{tenant}/verify", nil, false},
		"GET /v1/tenants/{tenant}/jobs/{id}/proof":     {"GET", "/v1/tenants/{tenant}/jobs/{id}/proof", nil, true},
		"GET /v1/tenants/{tenant}/checkpoints":         {"GET", "/v1/tenants/{tenant}/checkpoints", nil, false},
		"GET /v1/tenants/{tenant}/snapshots":           {"GET", "/v1/tenants/{tenant}/snapshots", nil, false},
		"POST /v1/tenants/{tenant}/snapshots":          {"POST", "/v1/tenants/{tenant}/snapshots", nil, false},

		"GET /v1/tenants/{tenant}/tlog/checkpoint":                                     {"GET", "/v1/tenants/{tenant}/tlog/checkpoint", nil, false},
		"GET /v1/tenants/{tenant}/tlog/tile/{level}/{index...}":                        {"GET", "/v1/tenants/{tenant}/tlog/tile/0/000.p/1", nil, false},
		"GET /v1/tenants/{tenant}/tlog/tile/entries/{index...}":                        {"GET", "/v1/tenants/{tenant}/tlog/tile/entries/000.p/1", nil, false},
		"GET /v1/tenants/{tenant}/partitions/{partition}/tlog/checkpoint":              {"GET", "/v1/tenants/{tenant}/partitions/p/tlog/checkpoint", nil, false},
		"GET /v1/tenants/{tenant}/partitions/{partition}/tlog/tile/{level}/{index...}": {"GET", "/v1/tenants/{tenant}/partitions/p/tlog/tile/0/000", nil, false},
		"GET /v1/tenants/{tenant}/partitions/{partition}/tlog/tile/entries/{index...}": {"GET", "/v1/tenants/{tenant}/partitions/p/tlog/tile/entries/000", nil, false},
	}
	routes := svc.Routes()
	sort.Strings(routes)
	for _, r := range routes {
		if _, ok := cases[r]; !ok {
			t.Fatalf("route %s has no isolation test case: add one to everyRoute", r)
		}
	}
	if len(routes) != len(cases) {
		t.Fatalf("everyRoute has %d cases for %d routes", len(cases), len(routes))
	}
	return cases
}

func (c routeCase) usesLease() bool {
	m, ok := c.body.(map[string]any)
	_, has := m["lease_token"]
	return ok && has
}

func (c routeCase) url(tenant, id string) string {
	return strings.NewReplacer("{tenant}", tenant, "{id}", id).Replace(c.path)
}

// TestTenantIsolation: a token of tenant A can never read, enqueue,
// dequeue, complete, cancel or verify tenant B, on any route, and learns
// nothing about whether B's jobs exist.
func TestTenantIsolation(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		// globex has jobs (one leased); acme has none yet.
		gJob := e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "k", "payload": map[string]any{"secret": "globex"}})
		e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "k", "payload": map[string]any{"secret": 2}})
		d := e.call("POST", "/v1/tenants/globex/dequeue", e.GlobexToken, map[string]any{"limit": 1}).must(t, http.StatusOK)
		gLease := d.body["jobs"].([]any)[0].(map[string]any)
		gLeased, gToken := gLease["job_id"].(string), gLease["lease_token"].(string)
		routes := everyRoute(t, e.Svc)

		// answers calls rc on tenant's path for globex's leased job (with
		// its lease token where rc takes one), its other job and an unknown
		// id: each must answer status (and code, if any), all three alike,
		// and none may write a row.
		answers := func(t *testing.T, rc routeCase, tenant, token string, status int, code, request string) {
			t.Helper()
			before := e.rows()
			var raw [][]byte
			for _, id := range []string{gLeased, gJob, uuid.NewString()} {
				body := rc.body
				if id == gLeased && rc.usesLease() {
					body = map[string]any{"lease_token": gToken} // even with the right lease token
				}
				r := e.call(rc.method, rc.url(tenant, id), token, body)
				if r.status != status || (code != "" && r.errCode() != code) {
					t.Fatalf("%s %s: %d %s, want %d", rc.method, rc.url(tenant, id), r.status, r.raw, status)
				}
				raw = append(raw, r.raw)
			}
			if !reflect.DeepEqual(raw[0], raw[2]) || !reflect.DeepEqual(raw[1], raw[2]) {
				t.Fatalf("%d answers differ by job existence:\n%s\n%s\n%s", status, raw[0], raw[1], raw[2])
			}
			if after := e.rows(); !reflect.DeepEqual(after, before) {
				t.Fatalf("%s wrote rows: %v -> %v", request, before, after)
			}
		}

		type who struct {
			name, token, own, other string
		}
		for _, w := range []who{
			{"acme token on globex", acmeToken, "acme", "globex"},
			{"globex database token on acme", e.GlobexToken, "globex", "acme"},
		} {
			for pattern, rc := range routes {
				t.Run(w.name+": "+pattern, func(t *testing.T) {
					// The other tenant's path: 403, whatever the job id, and
					// the same answer for an existing job as for none.
					answers(t, rc, w.other, w.token, http.StatusForbidden, "forbidden", "a forbidden request")
					// Its own path with the other tenant's job id: 404, the
					// very answer an unknown id gets.
					if rc.usesID && w.own == "acme" {
						answers(t, rc, w.own, w.token, http.StatusNotFound, "", "a request for another tenant's job")
					}
				})
			}
		}
		if st := e.statusOf(gLeased); st != "running" {
			t.Fatalf("globex's leased job is %s", st)
		}
		if st := e.statusOf(gJob); st != "pending" && gJob != gLeased {
			t.Fatalf("globex's pending job is %s", st)
		}

		// On its own tenant's collection routes, acme sees nothing of globex.
		if r := e.call("GET", "/v1/tenants/acme/jobs", acmeToken, nil).must(t, http.StatusOK); len(r.body["jobs"].([]any)) != 0 {
			t.Fatalf("acme lists %s", r.raw)
		}
		if r := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 10}).must(t, http.StatusOK); len(r.body["jobs"].([]any)) != 0 {
			t.Fatalf("acme dequeued %s", r.raw)
		}
		if r := e.call("GET", "/v1/tenants/acme/stats", acmeToken, nil).must(t, http.StatusOK); r.body["counts"].(map[string]any)["pending"] != 0.0 {
			t.Fatalf("acme stats %s", r.raw)
		}
		if r := e.call("POST", "/v1/tenants/acme/verify", acmeToken, nil).must(t, http.StatusOK); r.body["entries_checked"] != 0.0 {
			t.Fatalf("acme verify %s", r.raw)
		}
		// The admin token acts for both.
		e.call("GET", "/v1/tenants/globex/jobs/"+gJob, adminToken, nil).must(t, http.StatusOK)
		e.call("GET", "/v1/tenants/acme/jobs", adminToken, nil).must(t, http.StatusOK)
	})
}
