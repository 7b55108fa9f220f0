package dashboard_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var jobRow = regexp.MustCompile(`<tr data-job="([0-9a-f-]{36})">`)

// listed returns the job ids of a jobs page, in order.
func listed(body string) []string {
	var ids []string
	for _, m := range jobRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// Issue 16: the jobs page's search box. A whole job id (however pasted)
// opens the job, another tenant's as not found; other text is a payload
// search through the list query's payload_contains, case-sensitive with %
// and _ literal, combined with the other filters and kept across pages;
// the page says how far back it searched.
func TestJobsSearch(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		sale := e.enqueue("acme", acmeToken, map[string]any{"kind": "mail", "payload": map[string]any{"note": "50%_off"}})
		near := e.enqueue("acme", acmeToken, map[string]any{"kind": "mail", "payload": map[string]any{"note": "5000off"}})
		under := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"note": "50x_off"}})
		ada := e.enqueue("acme", acmeToken, map[string]any{"kind": "email.send", "payload": map[string]any{"to": "Ada@example.com"}})
		globex := e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "invoice", "payload": map[string]any{"note": "50%_off"}})

		b := e.login(acmeToken)
		for _, q := range []string{sale, "  " + sale + " ", strings.ToUpper(sale), "urn:uuid:" + sale} {
			p := b.get("/tenants/acme/jobs?q=" + url.QueryEscape(q))
			if p.status != http.StatusSeeOther || p.location != "/tenants/acme/jobs/"+sale {
				t.Errorf("q=%q: %d to %q, want the job's page", q, p.status, p.location)
			}
		}
		// Another tenant's job id leads to a page that does not show it.
		p := b.get("/tenants/acme/jobs?q=" + globex)
		b.get(p.location).must(t, http.StatusNotFound, "has no job")

		for q, want := range map[string][]string{
			"50%_off": {sale},
			"%":       {sale},
			"_":       {sale, under},
			"50_0":    nil,
			"ada":     nil,
			"Ada":     {ada},
			"off":     {sale, near, under},
			" off ":   {sale, near, under},
		} {
			p := b.get("/tenants/acme/jobs?q="+url.QueryEscape(q)).must(t, http.StatusOK, "searched the last 10,000 jobs")
			if got := listed(p.body); !slices.Equal(got, want) {
				t.Errorf("q=%q: listed %v, want %v", q, got, want)
			}
			if want == nil && !strings.Contains(p.body, "No jobs match") {
				t.Errorf("q=%q: no \"No jobs match\"", q)
			}
		}
		p = b.get("/tenants/acme/jobs?q="+url.QueryEscape("50%_off")).must(t, http.StatusOK,
			`value="50%_off"`, "Jobs whose payload contains “50%_off” (searched the last 10,000 jobs)")
		if strings.Contains(p.body, globex) {
			t.Error("acme's search shows globex's job")
		}
		if got := listed(b.get("/tenants/acme/jobs?q=off&kind=mail").must(t, http.StatusOK).body); !slices.Equal(got, []string{sale, near}) {
			t.Errorf("q=off kind=mail: %v", got)
		}
		if got := listed(b.get("/tenants/acme/jobs?q=off&state=failed").must(t, http.StatusOK).body); len(got) != 0 {
			t.Errorf("q=off state=failed: %v", got)
		}
		b.get("/tenants/acme/jobs?q=off&view=chain&partition=").must(t, http.StatusBadRequest, "search in the list view")
		b.get("/tenants/acme/jobs?q=a%00b").must(t, http.StatusBadRequest, "payload search contains a NUL byte")
		b.get("/tenants/acme/jobs?q="+strings.Repeat("x", 257)).must(t, http.StatusBadRequest, "limit is 256")

		// The search pages like the list, keeping q.
		var batch []map[string]any
		for i := range 55 {
			batch = append(batch, map[string]any{"kind": "bulk.mail", "payload": map[string]any{"campaign": "spring", "n": i}})
		}
		if status, out := e.api("POST", "/v1/tenants/acme/jobs/batch", acmeToken, map[string]any{"jobs": batch}); status != http.StatusCreated {
			t.Fatalf("batch: %d %v", status, out)
		}
		first := b.get("/tenants/acme/jobs?q=spring").must(t, http.StatusOK)
		m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first.body)
		if n := len(listed(first.body)); n != 50 || m == nil || !strings.Contains(m[1], "q=spring") {
			t.Fatalf("first page of q=spring: %d jobs, next link %v", n, m)
		}
		second := b.get(strings.ReplaceAll(m[1], "&amp;", "&")).must(t, http.StatusOK)
		if n := len(listed(second.body)); n != 5 {
			t.Fatalf("second page of q=spring: %d jobs, want 5", n)
		}
	})
}

var kindOption = regexp.MustCompile(`<option value="([^"]*)"( selected)?>`)

// kindOptions returns the kind picker's options and the selected one.
func kindOptions(t *testing.T, body string) (opts []string, selected string) {
	t.Helper()
	i := strings.Index(body, `<select id="f-kind" name="kind">`)
	if i < 0 {
		t.Fatalf("no kind picker on the page:\n%s", body)
	}
	sel := body[i : i+strings.Index(body[i:], "</select>")]
	for _, m := range kindOption.FindAllStringSubmatch(sel, -1) {
		opts = append(opts, m[1])
		if m[2] != "" {
			selected = m[1]
		}
	}
	return opts, selected
}

// Issue 16: the kind filter is a picker (a plain <select> in the GET
// form, so it works without JavaScript) of the tenant's kinds, in byte
// order, never another tenant's; a kind filtered on stays selectable.
func TestKindPicker(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		for i, kind := range []string{"report", "email.send", "Audit", "report", "email.send"} {
			e.enqueue("acme", acmeToken, map[string]any{"kind": kind, "payload": map[string]any{"n": i}})
		}
		e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "invoice"})

		b := e.login(acmeToken)
		opts, selected := kindOptions(t, b.get("/tenants/acme/jobs").must(t, http.StatusOK).body)
		if want := []string{"", "Audit", "email.send", "report"}; !slices.Equal(opts, want) || selected != "" {
			t.Fatalf("kind picker: %q (selected %q), want %q with any kind selected", opts, selected, want)
		}
		p := b.get("/tenants/acme/jobs?kind=report").must(t, http.StatusOK)
		if _, selected := kindOptions(t, p.body); selected != "report" || len(listed(p.body)) != 2 {
			t.Fatalf("kind=report: %q selected, %d jobs", selected, len(listed(p.body)))
		}
		// A kind no recent job has: still the selected option, no jobs.
		p = b.get("/tenants/acme/jobs?kind=ghost.kind").must(t, http.StatusOK, "No jobs match")
		if opts, selected := kindOptions(t, p.body); selected != "ghost.kind" || !slices.Contains(opts, "report") {
			t.Fatalf("kind=ghost.kind: options %q, selected %q", opts, selected)
		}
		admin := e.login(adminToken)
		if opts, _ := kindOptions(t, admin.get("/tenants/globex/jobs").must(t, http.StatusOK).body); !slices.Equal(opts, []string{"", "invoice"}) {
			t.Fatalf("globex's kinds: %q", opts)
		}
	})
}
