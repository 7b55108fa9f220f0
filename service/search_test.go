package service_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/service"
)

// Issue 16: the job list takes payload_contains, the dashboard's search,
// with the same meaning on both backends: case-sensitive, every character
// literal (% and _ too), combined with the other filters, one tenant's
// jobs only.
func TestListPayloadContains(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		sale := e.enqueue("acme", acmeToken, map[string]any{"kind": "mail", "payload": map[string]any{"note": "50%_off"}})
		near := e.enqueue("acme", acmeToken, map[string]any{"kind": "mail", "payload": map[string]any{"note": "5000off"}})
		report := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"note": "50%_off"}})
		e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "mail", "payload": map[string]any{"note": "50%_off"}})

		list := func(query string) []string {
			t.Helper()
			r := e.call("GET", "/v1/tenants/acme/jobs?"+query, acmeToken, nil).must(t, http.StatusOK)
			var ids []string
			for _, j := range r.body["jobs"].([]any) {
				ids = append(ids, j.(map[string]any)["job_id"].(string))
			}
			return ids
		}
		for query, want := range map[string][]string{
			"payload_contains=" + url.QueryEscape("50%_off"):                {sale, report},
			"payload_contains=" + url.QueryEscape("50_0"):                   nil,
			"payload_contains=OFF":                                          nil,
			"payload_contains=off&kind=mail":                                {sale, near},
			"payload_contains=" + url.QueryEscape("%_") + "&limit=1":        {sale},
			"payload_contains=":                                             {sale, near, report},
			"payload_contains=" + url.QueryEscape(`"note":"5000off"`):       {near},
			"payload_contains=" + url.QueryEscape("_off") + "&state=failed": nil,
		} {
			if got := list(query); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", query, got, want)
			}
		}
		r := e.call("GET", "/v1/tenants/acme/jobs?payload_contains=a%00b", acmeToken, nil).must(t, http.StatusBadRequest)
		if r.errCode() != "invalid_field" || r.errField() != "payload_contains" {
			t.Fatalf("a NUL in payload_contains: %s", r.raw)
		}
		r = e.call("GET", "/v1/tenants/acme/jobs?payload_contains="+strings.Repeat("x", 257), acmeToken, nil).must(t, http.StatusBadRequest)
		if r.errField() != "payload_contains" {
			t.Fatalf("a long payload_contains: %s", r.raw)
		}
	})
}
