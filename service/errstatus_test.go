package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/service"
)

// TestClosedDatabaseIsUnavailable: once the database is gone, every read
// and write answers 503 "unavailable" (worth retrying), never a 500 with
// the driver's words, and never a 2xx that hides the failure. Both
// backends answer alike.
func TestClosedDatabaseIsUnavailable(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		id := e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"to": "a@example.com"}})
		if err := e.svc.Queue().Backend().Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/v1/tenants/acme/jobs/" + id, nil},
			{"GET", "/v1/tenants/acme/jobs", nil},
			{"POST", "/v1/tenants/acme/jobs", map[string]any{"kind": "email", "payload": map[string]any{"to": "b@example.com"}}},
			{"POST", "/v1/tenants/acme/jobs/" + id + "/cancel", map[string]any{}},
		} {
			r := e.call(c.method, c.path, acmeToken, c.body)
			if r.status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
				t.Errorf("%s %s on a closed database: %d %s; want 503 unavailable", c.method, c.path, r.status, r.raw)
			}
			if strings.Contains(string(r.raw), "closed") {
				t.Errorf("%s %s: the answer shows the driver's words: %s", c.method, c.path, r.raw)
			}
		}
	})
}
