package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/testdb"
)

// No page shows data without a login: each redirects to the login form,
// keeping where the user was going; the static assets are public.
func TestLoginRequired(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		anon := &browser{e: e}
		for _, path := range []string{"/", "/nodes", "/periodic", "/tenants/acme/jobs", "/tenants/acme/chain", "/tenants/acme/queues",
			"/tenants/acme/jobs/6f1c2d8e-0000-0000-0000-000000000000", "/no/such/page"} {
			p := anon.get(path)
			if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
				t.Errorf("GET %s without a session: %d to %q, want 303 to /login", path, p.status, p.location)
			}
		}
		if p := anon.get("/tenants/acme/jobs"); p.location != "/login?next=%2Ftenants%2Facme%2Fjobs" {
			t.Errorf("redirect to %q, want the page kept in next", p.location)
		}
		// A POST without a session changes nothing and goes to the login.
		if p := anon.post("/tenants/acme/queues/pause", url.Values{"kind": {""}}); p.status != http.StatusSeeOther {
			t.Errorf("POST without a session: %d, want 303", p.status)
		}
		anon.get("/login").must(t, http.StatusOK, `<form method="post" action="/login">`, `type="password"`)
		// Issue 14: the login page shows its own messages by code, never
		// text from the link that led to it.
		anon.get("/login?msg=out").must(t, http.StatusOK, "You are logged out.")
		if p := anon.get("/login?msg=" + url.QueryEscape("Your account is locked: call +1 555 0100")); strings.Contains(p.body, "locked") {
			t.Errorf("the login page shows the text of ?msg=: %s", p.body)
		}
		anon.get("/static/style.css").must(t, http.StatusOK, "--fg")
		anon.get("/static/app.js").must(t, http.StatusOK, "rootFromPath")
		// The API keeps its JSON 404s.
		if status, out := e.api("GET", "/v1/nope", adminToken, nil); status != http.StatusNotFound || out["error"] == nil {
			t.Errorf("GET /v1/nope: %d %v, want the API's JSON 404", status, out)
		}
	})
}

// Logging in: a wrong token is refused on the form; a right one gets an
// HttpOnly, SameSite=Strict, Secure (loopback) session cookie; logging
// out needs the form's CSRF token and ends the session; a revoked token
// ends its sessions at the next request.
func TestLoginSessionAndRevocation(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		anon := &browser{e: e}
		anon.post("/login", url.Values{"token": {"wrong"}}).must(t, http.StatusUnauthorized, "not valid")
		anon.post("/login", url.Values{"token": {""}}).must(t, http.StatusUnauthorized, "Enter an API token")
		if anon.cookie != "" {
			t.Fatal("a failed login set a session cookie")
		}
		// A login from another site's form is refused.
		req, _ := http.NewRequest("POST", e.URL+"/login", strings.NewReader("token="+adminToken))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("cross-site login: %d, want 400", resp.StatusCode)
		}

		b := &browser{e: e}
		p := b.post("/login", url.Values{"token": {adminToken}, "next": {"/nodes"}})
		if p.status != http.StatusSeeOther || p.location != "/nodes" {
			t.Fatalf("login: %d to %q, want 303 to /nodes", p.status, p.location)
		}
		set := p.header.Get("Set-Cookie")
		for _, want := range []string{"HttpOnly", "SameSite=Strict", "Secure", "Path=/"} {
			if !strings.Contains(set, want) {
				t.Errorf("session cookie %q lacks %s", set, want)
			}
		}
		if strings.Contains(set, adminToken) {
			t.Fatal("the session cookie carries the token")
		}
		// An open redirect through next is refused.
		if p := (&browser{e: e}).post("/login", url.Values{"token": {adminToken}, "next": {"//evil.example/x"}}); p.location != "/" {
			t.Errorf("next=//evil.example: redirected to %q, want /", p.location)
		}
		home := b.get("/").must(t, http.StatusOK, "Overview", "admin · ops")
		if p := b.post("/logout", url.Values{"csrf": {"forged"}}); p.status != http.StatusForbidden {
			t.Errorf("logout with a forged CSRF token: %d, want 403", p.status)
		}
		b.post("/logout", url.Values{"csrf": {csrf(t, home.body)}})
		if p := b.get("/"); p.status != http.StatusSeeOther {
			t.Errorf("after logout: %d, want a redirect to the login", p.status)
		}

		// Revocation takes effect at the next request.
		g := e.login(e.GlobexToken)
		g.get("/tenants/globex/jobs").must(t, http.StatusOK)
		e.revoke(e.GlobexTokenID)
		p = g.get("/tenants/globex/jobs")
		// Revoking a token deletes its sessions (driver.Tokens.RevokeToken).
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login?msg=ended") {
			t.Errorf("after revoking the token: %d to %q, want a redirect to the login", p.status, p.location)
		}
		g.get(p.location).must(t, http.StatusOK, "Your session ended")
	})
}

// A tenant token sees only its tenant: another tenant's pages are 403
// (whether that tenant exists or not), another tenant's job under its own
// tenant is 404, the overview lists only its tenant, the nodes page is
// for admins, and forms against another tenant change nothing.
// Issue 14: sessions live in the database, so a session started on one
// node is served by another (behind a load balancer), and logging out on
// either ends it on both.
func TestSessionsServedByAnyNode(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		a, b := newEnv(t, dbURL), newEnv(t, dbURL)
		onA := a.login(adminToken)
		onA.get("/tenants/acme/jobs").must(t, http.StatusOK)
		onB := &browser{e: b, cookie: onA.cookie}
		page := onB.get("/tenants/acme/jobs")
		page.must(t, http.StatusOK)
		out := onB.post("/logout", url.Values{"csrf": {csrf(t, page.body)}})
		if out.status != http.StatusSeeOther {
			t.Fatalf("logout on node b: %d %s", out.status, out.body)
		}
		if p := (&browser{e: a, cookie: onA.cookie}).get("/tenants/acme/jobs"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/login") {
			t.Fatalf("the session after logging out on the other node: %d to %q; want the login", p.status, p.location)
		}
	})
}

// Issue 14: failed logins from one address are throttled (the service's
// Ordo:Http:AuthFailuresPerMinute, 10 by default), the right token
// included, until the minute ends.
func TestFailedLoginsAreThrottled(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t))
	anon := &browser{e: e}
	for i := range 10 {
		anon.post("/login", url.Values{"token": {fmt.Sprintf("wrong-%d", i)}}).must(t, http.StatusUnauthorized, "not valid")
	}
	p := anon.post("/login", url.Values{"token": {adminToken}})
	p.must(t, http.StatusTooManyRequests, "Too many failed logins")
	if p.header.Get("Retry-After") == "" || anon.cookie != "" {
		t.Fatalf("throttled login: Retry-After %q, cookie %q", p.header.Get("Retry-After"), anon.cookie)
	}
	e.Wall.Advance(time.Minute)
	e.login(adminToken)
}

func TestTenantIsolation(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		acmeJob := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 1}})
		globexJob := e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 2}})

		admin := e.login(adminToken)
		admin.get("/").must(t, http.StatusOK, `data-tenant="acme"`, `data-tenant="globex"`)

		acme := e.login(acmeToken)
		home := acme.get("/").must(t, http.StatusOK, `data-tenant="acme"`)
		if strings.Contains(home.body, "globex") {
			t.Error("the overview of an acme token mentions globex")
		}
		for _, path := range []string{"/tenants/globex/jobs", "/tenants/globex/jobs/" + globexJob, "/tenants/globex/chain",
			"/tenants/globex/queues", "/tenants/nobody/jobs", "/tenants/globex/jobs/" + globexJob + "/cancel"} {
			p := acme.get(path)
			if p.status != http.StatusForbidden || strings.Contains(p.body, globexJob) {
				t.Errorf("acme token, GET %s: %d, want 403 revealing nothing", path, p.status)
			}
		}
		acme.get("/tenants/acme/jobs/"+globexJob).must(t, http.StatusNotFound, "has no job")
		acme.get("/tenants/acme/jobs/"+acmeJob).must(t, http.StatusOK, acmeJob)
		acme.get("/nodes").must(t, http.StatusForbidden, "Only an admin")
		acme.get("/tenants/bad%20id/jobs").must(t, http.StatusBadRequest)
		tok := csrf(t, home.body)
		for _, path := range []string{"/tenants/globex/queues/pause", "/tenants/globex/jobs/" + globexJob + "/cancel", "/tenants/globex/verify"} {
			if p := acme.post(path, url.Values{"csrf": {tok}, "kind": {""}}); p.status != http.StatusForbidden {
				t.Errorf("acme token, POST %s: %d, want 403", path, p.status)
			}
		}
		if st := e.status(globexJob); st != "pending" {
			t.Errorf("globex's job is %s after acme's forms, want pending", st)
		}
		if paused := e.count("SELECT count(*) FROM {p}paused_queues"); paused != 0 {
			t.Errorf("%d paused queues after acme's forms, want 0", paused)
		}
	})
}

// Actions need a confirmation page and a POST with the session's CSRF
// token; retry brings a failed job back with its attempts reset, cancel
// cancels, pause makes dequeue skip the queue until resume; each is
// recorded.
func TestActions(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		job := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 1}, "max_attempts": 1})
		status, out := e.api("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{})
		if status != http.StatusOK || len(out["jobs"].([]any)) != 1 {
			t.Fatalf("dequeue: %d %v", status, out)
		}
		lease := out["jobs"].([]any)[0].(map[string]any)["lease_token"]
		if status, out := e.api("POST", "/v1/tenants/acme/jobs/"+job+"/fail", acmeToken, map[string]any{"lease_token": lease, "error": "disk full"}); status != http.StatusOK {
			t.Fatalf("fail: %d %v", status, out)
		}

		b := e.login(acmeToken)
		jobPage := b.get("/tenants/acme/jobs/"+job).must(t, http.StatusOK, "disk full", "Retry…")
		if strings.Contains(jobPage.body, "Cancel…") {
			t.Error("a failed job offers Cancel")
		}
		confirm := b.get("/tenants/acme/jobs/"+job+"/retry").must(t, http.StatusOK, "attempts reset to 0", `id="confirm"`)
		tok := csrf(t, confirm.body)
		if p := b.post("/tenants/acme/jobs/"+job+"/retry", url.Values{}); p.status != http.StatusForbidden {
			t.Errorf("retry without a CSRF token: %d, want 403", p.status)
		}
		if st := e.status(job); st != "failed" {
			t.Fatalf("job is %s after a refused retry, want failed", st)
		}
		p := b.post("/tenants/acme/jobs/"+job+"/retry", url.Values{"csrf": {tok}})
		if p.status != http.StatusSeeOther || !strings.HasSuffix(p.location, "?done=retried") {
			t.Fatalf("retry: %d to %q", p.status, p.location)
		}
		if st, attempts := e.status(job), e.count("SELECT attempts FROM {p}job_state WHERE CAST(job_id AS TEXT) = "+e.Ph(1), job); st != "pending" || attempts != 0 {
			t.Fatalf("after retry: %s with %d attempts, want pending with 0", st, attempts)
		}
		b.get("/tenants/acme/jobs/"+job+"?done=retried").must(t, http.StatusOK, "back in the queue", "was failed", "Cancel…")
		// Retrying a pending job is refused, on the page and on POST.
		b.get("/tenants/acme/jobs/"+job+"/retry").must(t, http.StatusOK, "cannot be retried")
		b.post("/tenants/acme/jobs/"+job+"/retry", url.Values{"csrf": {tok}}).must(t, http.StatusConflict, "only a failed or cancelled job")

		b.get("/tenants/acme/jobs/"+job+"/cancel").must(t, http.StatusOK, "Cancel the job")
		b.post("/tenants/acme/jobs/"+job+"/cancel", url.Values{"csrf": {tok}}).must(t, http.StatusSeeOther)
		if st := e.status(job); st != "cancelled" {
			t.Fatalf("after cancel: %s", st)
		}
		b.post("/tenants/acme/jobs/"+job+"/cancel", url.Values{"csrf": {tok}}).must(t, http.StatusConflict, "already cancelled")
		b.get("/tenants/acme/jobs/"+job+"/delete").must(t, http.StatusNotFound)

		// Pause the report queue of acme: dequeue skips it, other kinds run.
		b.post("/tenants/acme/jobs/"+job+"/retry", url.Values{"csrf": {tok}}).must(t, http.StatusSeeOther)
		other := e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"n": 2}})
		b.get("/tenants/acme/queues/pause?kind=report").must(t, http.StatusOK, "the <strong>report</strong> jobs of acme")
		b.get("/tenants/acme/queues/pause?kind=bad%20kind").must(t, http.StatusBadRequest)
		b.post("/tenants/acme/queues/pause", url.Values{"csrf": {tok}, "kind": {"report"}}).must(t, http.StatusSeeOther)
		b.get("/tenants/acme/queues?done=paused").must(t, http.StatusOK, "is paused", "kind <strong>report</strong>", "acme-ci")
		b.get("/").must(t, http.StatusOK, "Paused: kind <strong>report</strong>")
		status, out = e.api("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 10})
		if got := out["jobs"].([]any); status != http.StatusOK || len(got) != 1 || got[0].(map[string]any)["job_id"] != other {
			t.Fatalf("dequeue with acme/report paused: %d %v, want only the email job", status, out)
		}
		b.post("/tenants/acme/queues/resume", url.Values{"csrf": {tok}, "kind": {"report"}}).must(t, http.StatusSeeOther)
		b.post("/tenants/acme/queues/resume", url.Values{"csrf": {tok}, "kind": {"report"}}).must(t, http.StatusConflict, "was not paused")
		status, out = e.api("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 10})
		if got := out["jobs"].([]any); status != http.StatusOK || len(got) != 1 || got[0].(map[string]any)["job_id"] != job {
			t.Fatalf("dequeue after resume: %d %v, want the report job", status, out)
		}
		if n := e.count("SELECT count(*) FROM {p}operator_actions WHERE tenant_id = 'acme'"); n != 5 {
			t.Errorf("%d operator actions recorded, want 5 (retry, cancel, retry, pause, resume)", n)
		}
	})
}

var thlcCell = regexp.MustCompile(`<code class="thlc">([^<]+)</code>`)

// The jobs list pages by cursor in HLC order, filters by state, kind and
// partition, and refuses bad filters with a clear 400.
func TestJobsPagination(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		var jobs []map[string]any
		for i := range 120 {
			jobs = append(jobs, map[string]any{"kind": []string{"report", "email"}[i%2], "partition": []string{"eu", "us", ""}[i%3],
				"payload": map[string]any{"n": i}})
		}
		for i := 0; i < len(jobs); i += 60 {
			if status, out := e.api("POST", "/v1/tenants/acme/jobs/batch", acmeToken, map[string]any{"jobs": jobs[i : i+60]}); status != http.StatusCreated {
				t.Fatalf("batch: %d %v", status, out)
			}
			e.Wall.Advance(time.Millisecond)
		}
		b := e.login(acmeToken)
		var all []string
		path := "/tenants/acme/jobs"
		pages := 0
		for path != "" {
			p := b.get(path).must(t, http.StatusOK)
			pages++
			for _, m := range thlcCell.FindAllStringSubmatch(p.body, -1) {
				all = append(all, m[1])
			}
			path = ""
			if m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(p.body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
		}
		if pages != 3 || len(all) != 120 {
			t.Fatalf("%d pages, %d jobs; want 3 pages of 120 jobs", pages, len(all))
		}
		if !slices.IsSorted(all) {
			t.Fatal("the jobs are not in t_hlc order across pages")
		}
		if len(slices.Compact(slices.Clone(all))) != 120 {
			t.Fatal("a job is listed twice")
		}
		p := b.get("/tenants/acme/jobs?kind=email&partition=eu").must(t, http.StatusOK)
		if n := len(thlcCell.FindAllString(p.body, -1)); n != 20 {
			t.Errorf("kind=email partition=eu: %d jobs, want 20", n)
		}
		p = b.get("/tenants/acme/jobs?partition=(default)&view=chain").must(t, http.StatusOK, `class="arrow ok"`)
		if strings.Contains(p.body, `arrow bad`) {
			t.Error("the chain view of an intact chain shows a broken link")
		}
		if n := strings.Count(p.body, `<li class="entry`); n != 40 {
			t.Errorf("chain of the default partition: %d entries, want 40", n)
		}
		p = b.get("/tenants/acme/jobs?state=succeeded").must(t, http.StatusOK, "No jobs match")
		for _, bad := range []string{"?state=done", "?kind=bad%20kind", "?cursor=nonsense", "?view=grid", "?color=red"} {
			b.get("/tenants/acme/jobs"+bad).must(t, http.StatusBadRequest, "not valid")
		}
	})
}

// A verification from the dashboard is recorded and shown; after a row is
// tampered with, the next one fails with the issue that names it, and the
// overview says the last verification failed.
func TestVerification(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		var ids []string
		for i := range 3 {
			ids = append(ids, e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": i}}))
		}
		e.checkpoint()
		b := e.login(adminToken)
		page := b.get("/tenants/acme/chain").must(t, http.StatusOK, "Never verified", "valid")
		tok := csrf(t, page.body)
		b.post("/tenants/acme/verify", url.Values{"csrf": {tok}}).must(t, http.StatusSeeOther)
		b.get("/tenants/acme/chain").must(t, http.StatusOK, `data-valid="true"`, "3 entries checked", "dashboard:ops")
		b.get("/").must(t, http.StatusOK, `data-verification="passed"`)

		e.exec(`UPDATE {p}scheduler_log SET payload = '{"n":999}' WHERE CAST(job_id AS TEXT) = `+e.Ph(1), ids[1])
		b.post("/tenants/acme/verify", url.Values{"csrf": {tok}}).must(t, http.StatusSeeOther)
		p := b.get("/tenants/acme/chain").must(t, http.StatusOK, `data-valid="false"`, `data-issue="payload_hash_mismatch"`)
		if !strings.Contains(p.body, ids[1][:12]) {
			t.Error("the issue does not name the tampered job")
		}
		b.get("/").must(t, http.StatusOK, `data-verification="failed"`)
		// The API's verify is recorded too.
		e.exec(`UPDATE {p}scheduler_log SET payload = '{"n":1}' WHERE CAST(job_id AS TEXT) = `+e.Ph(1), ids[1])
		if status, out := e.api("POST", "/v1/tenants/acme/verify", acmeToken, nil); status != http.StatusOK || out["valid"] != true {
			t.Fatalf("API verify: %d %v", status, out)
		}
		b.get("/tenants/acme/chain").must(t, http.StatusOK, `data-valid="true"`, "api:acme-ci")
	})
}

// The nodes page lists this node with its clock.
func TestNodesPage(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		e.enqueue("acme", acmeToken, map[string]any{"kind": "report"})
		b := e.login(adminToken)
		if err := e.Svc.ReportNode(context.Background()); err != nil {
			t.Fatal(err)
		}
		p := b.get("/nodes").must(t, http.StatusOK)
		if !strings.Contains(p.body, `data-node="test-node"`) || !strings.Contains(p.body, "hlc-reads") {
			t.Fatalf("the nodes page does not list test-node in hlc-reads mode:\n%s", p.body)
		}
	})
}

// A node in legacy mode has issued no HLC timestamp: the nodes page says
// so instead of a "drift" of minus the whole epoch (issue 16).
func TestNodesPageInLegacyMode(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnvWith(t, dbURL, func(c *config.Config) { c.Scheduler.Queue.Hlc = config.Hlc{MaxClockDriftMs: 60000} })
		b := e.login(adminToken)
		if err := e.Svc.ReportNode(context.Background()); err != nil {
			t.Fatal(err)
		}
		p := b.get("/nodes").must(t, http.StatusOK, `data-node="test-node"`, "legacy", "none issued yet")
		if regexp.MustCompile(`-\d{6,} ms`).MatchString(p.body) {
			t.Fatalf("the nodes page shows an epoch-sized drift for a legacy node:\n%s", p.body)
		}
	})
}

// In a demo, every page says in one line what it shows; otherwise none
// does.
func TestDemoIntroLines(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		for _, demo := range []bool{false, true} {
			e := newEnvWith(t, dbURL, func(c *config.Config) { c.Ordo.Demo.Enabled = demo })
			id := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"demo": demo}})
			b := e.login(adminToken)
			for _, path := range []string{"/", "/tenants/acme/jobs", "/tenants/acme/jobs/" + id, "/tenants/acme/chain", "/tenants/acme/queues", "/nodes"} {
				p := b.get(path).must(t, http.StatusOK)
				if got := strings.Contains(p.body, "data-intro"); got != demo {
					t.Errorf("demo %t: %s has an intro line: %t", demo, path, got)
				}
			}
		}
	})
}

func (e *env) status(id string) string {
	e.T.Helper()
	var st string
	if err := e.Raw.QueryRow("SELECT status FROM "+e.Prefix+"job_state WHERE CAST(job_id AS TEXT) = "+e.Ph(1), id).Scan(&st); err != nil {
		e.T.Fatal(err)
	}
	return st
}

func (e *env) count(q string, args ...any) int64 {
	e.T.Helper()
	var n int64
	if err := e.Raw.QueryRow(strings.ReplaceAll(q, "{p}", e.Prefix), args...).Scan(&n); err != nil {
		e.T.Fatalf("%s: %v", q, err)
	}
	return n
}

func (e *env) revoke(id string) {
	e.T.Helper()
	if err := e.Svc.Queue().Backend().RevokeToken(context.Background(), id, time.Now()); err != nil {
		e.T.Fatal(err)
	}
}
