package dashboard_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// dequeueOne leases the tenant's next job and returns its id and lease.
func (e *env) dequeueOne(tenant, token string) (id, lease string) {
	e.T.Helper()
	status, out := e.api("POST", "/v1/tenants/"+tenant+"/dequeue", token, map[string]any{})
	if status != http.StatusOK || len(out["jobs"].([]any)) != 1 {
		e.T.Fatalf("dequeue: %d %v", status, out)
	}
	j := out["jobs"].([]any)[0].(map[string]any)
	return j["job_id"].(string), j["lease_token"].(string)
}

// jobAPI calls POST /v1/tenants/acme/jobs/{id}/{op} and wants 200.
func (e *env) jobAPI(id, op string, body map[string]any) {
	e.T.Helper()
	if status, out := e.api("POST", "/v1/tenants/acme/jobs/"+id+"/"+op, acmeToken, body); status != http.StatusOK {
		e.T.Fatalf("%s %s: %d %v", op, id, status, out)
	}
}

// apiStatus is a job's status as the API shows it ("pruned" after a
// delete).
func (e *env) apiStatus(id string) string {
	e.T.Helper()
	status, out := e.api("GET", "/v1/tenants/acme/jobs/"+id, acmeToken, nil)
	if status != http.StatusOK {
		e.T.Fatalf("GET job %s: %d %v", id, status, out)
	}
	return out["status"].(string)
}

// bulkJobs holds acme's jobs in every state a bulk action meets.
type bulkJobs struct{ failed, cancelled1, cancelled2, succeeded, running, pending string }

func newBulkJobs(e *env) bulkJobs {
	e.T.Helper()
	var j bulkJobs
	j.failed = e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 1}, "max_attempts": 1})
	if id, lease := e.dequeueOne("acme", acmeToken); id != j.failed {
		e.T.Fatalf("dequeued %s, want %s", id, j.failed)
	} else {
		e.jobAPI(id, "fail", map[string]any{"lease_token": lease, "error": "disk full"})
	}
	j.cancelled1 = e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 2}})
	e.jobAPI(j.cancelled1, "cancel", nil)
	j.cancelled2 = e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"n": 3}})
	e.jobAPI(j.cancelled2, "cancel", nil)
	j.succeeded = e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"n": 4}})
	if id, lease := e.dequeueOne("acme", acmeToken); id != j.succeeded {
		e.T.Fatalf("dequeued %s, want %s", id, j.succeeded)
	} else {
		e.jobAPI(id, "complete", map[string]any{"lease_token": lease})
	}
	j.running = e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 5}})
	if id, _ := e.dequeueOne("acme", acmeToken); id != j.running {
		e.T.Fatalf("dequeued %s, want %s", id, j.running)
	}
	j.pending = e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"n": 6}})
	return j
}

// selection is the bulk form's query: an action and jobs, coming back to
// the list filtered by back.
func selection(action, back string, ids ...string) url.Values {
	q := url.Values{"action": {action}, "job": ids}
	if back != "" {
		q.Set("back", back)
	}
	return q
}

var flashLine = regexp.MustCompile(`<p class="flash" role="status">([^<]*)</p>`)

// bulk confirms and posts a bulk action the way the pages do: the
// confirmation page, then its form; it follows the redirect and returns
// the confirmation page and the flash on the list.
func (b *browser) bulk(t *testing.T, q url.Values, wantSummary string) (confirm page, flash string) {
	t.Helper()
	confirm = b.get("/tenants/acme/jobs/bulk?"+q.Encode()).must(t, http.StatusOK, `id="bulk-plan"`, wantSummary)
	form := url.Values{"csrf": {csrf(t, confirm.body)}, "action": q["action"], "job": q["job"], "back": q["back"]}
	done := b.post("/tenants/acme/jobs/bulk", form)
	if done.status != http.StatusSeeOther || !strings.HasPrefix(done.location, "/tenants/acme/jobs?") {
		t.Fatalf("bulk %s: %d to %q:\n%s", q.Get("action"), done.status, done.location, done.body)
	}
	list := b.get(done.location).must(t, http.StatusOK)
	m := flashLine.FindStringSubmatch(list.body)
	if m == nil {
		t.Fatalf("no flash after bulk %s (%s):\n%s", q.Get("action"), done.location, list.body)
	}
	return confirm, m[1]
}

// Issue 16: bulk retry, cancel and delete over a mixed selection. One
// confirmation page lists what happens to each job, and which jobs the
// action skips and why; the form does it, records each job's action, and
// the list says what happened in one line.
func TestBulkActions(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		j := newBulkJobs(e)
		b := e.login(acmeToken)

		// The list offers the boxes and the actions.
		list := b.get("/tenants/acme/jobs").must(t, http.StatusOK, `id="bulk-retry"`, `id="bulk-cancel"`, `id="bulk-delete"`,
			`id="select-all"`, `<input type="checkbox" name="job" value="`+j.pending+`"`)
		if strings.Contains(list.body, `value="`+j.pending+`" aria-label="Select job `+j.pending+`" checked`) {
			t.Fatal("a job is selected before anything was selected")
		}
		// Without JavaScript, "select all on this page" is a link.
		all := b.get("/tenants/acme/jobs?select=all").must(t, http.StatusOK)
		if n := strings.Count(all.body, `name="job" value=`); n != 6 || strings.Count(all.body, `" checked>`) < 6 {
			t.Fatalf("select=all: %d boxes, %d checked", n, strings.Count(all.body, `" checked>`))
		}

		// Retry: the failed and cancelled ones; the pending one is skipped.
		confirm, flash := b.bulk(t, selection("retry", "", j.failed, j.cancelled1, j.cancelled2, j.pending),
			"3 will be retried, 1 skipped: pending.")
		for id, want := range map[string]string{j.failed: "will be retried", j.cancelled1: "will be retried",
			j.pending: "skipped: pending: only failed or cancelled jobs can be retried"} {
			row := regexp.MustCompile(`(?s)<tr data-job="` + id + `" data-applies="[a-z]+">.*?</tr>`).FindString(confirm.body)
			if !strings.Contains(row, want) {
				t.Errorf("the confirmation row of %s lacks %q: %s", id, want, row)
			}
		}
		if !strings.Contains(confirm.body, "Retry 3 jobs") {
			t.Error("the confirmation button does not say how many jobs")
		}
		if flash != "3 retried, 1 skipped: pending" {
			t.Errorf("retry flash %q", flash)
		}
		for _, id := range []string{j.failed, j.cancelled1, j.cancelled2} {
			if st := e.status(id); st != "pending" {
				t.Errorf("%s is %s after the bulk retry, want pending", id, st)
			}
		}
		if n := e.count("SELECT attempts FROM {p}job_state WHERE CAST(job_id AS TEXT) = "+e.Ph(1), j.failed); n != 0 {
			t.Errorf("the retried job has %d attempts, want 0", n)
		}

		// Cancel: everything but the finished one; back to a filtered list.
		_, flash = b.bulk(t, selection("cancel", "state=cancelled", j.failed, j.running, j.pending, j.succeeded),
			"3 will be cancelled, 1 skipped: succeeded.")
		if flash != "3 cancelled, 1 skipped: succeeded" {
			t.Errorf("cancel flash %q", flash)
		}
		for _, id := range []string{j.failed, j.running, j.pending} {
			if st := e.status(id); st != "cancelled" {
				t.Errorf("%s is %s after the bulk cancel, want cancelled", id, st)
			}
		}

		// Delete: the finished ones; a pending one is skipped.
		confirm, flash = b.bulk(t, selection("delete", "", j.failed, j.running, j.succeeded, j.cancelled1, j.pending),
			"4 will be deleted, 1 skipped: pending.")
		if !strings.Contains(confirm.body, "reads as pruned") || !strings.Contains(confirm.body, "(cancel it first)") {
			t.Error("the delete confirmation does not explain what stays and what it skips")
		}
		if flash != "4 deleted, 1 skipped: pending" {
			t.Errorf("delete flash %q", flash)
		}
		for _, id := range []string{j.failed, j.running, j.succeeded, j.pending} {
			if st := e.apiStatus(id); st != "pruned" {
				t.Errorf("%s is %s after the bulk delete, want pruned (its chain entry stays)", id, st)
			}
		}
		if st := e.apiStatus(j.cancelled1); st != "pending" {
			t.Errorf("the skipped job is %s, want pending", st)
		}
		if got := listed(b.get("/tenants/acme/jobs").must(t, http.StatusOK).body); len(got) != 2 {
			t.Errorf("after the delete the list shows %v, want the two jobs left", got)
		}
		// Each job's action is recorded with who did it.
		for action, want := range map[string]int64{"retry": 3, "cancel": 3, "delete": 4} {
			if n := e.count("SELECT count(*) FROM {p}operator_actions WHERE tenant_id = 'acme' AND actor = 'acme-ci' AND action = "+e.Ph(1), action); n != want {
				t.Errorf("%d %s actions recorded, want %d", n, action, want)
			}
		}
		// The job page of a deleted job still shows it, as pruned, with
		// what was done to it.
		b.get("/tenants/acme/jobs/"+j.failed).must(t, http.StatusOK, "pruned", "was cancelled (one of 5 selected)")

		// Nothing to do: the page says so and offers no button.
		p := b.get("/tenants/acme/jobs/bulk?"+selection("retry", "", j.pending).Encode()).must(t, http.StatusOK,
			"0 will be retried, 1 skipped: pruned.", "None of the selected jobs can be retried")
		if strings.Contains(p.body, `id="confirm"`) {
			t.Error("a confirmation with nothing to do offers the button")
		}
	})
}

// Issue 16: what a bulk request may hold, and who may send it: at most a
// page of job ids, a known action, the session's CSRF token from the
// dashboard's own origin; the result line cannot be forged by a link.
func TestBulkRefusals(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		failed := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "max_attempts": 1})
		id, lease := e.dequeueOne("acme", acmeToken)
		e.jobAPI(id, "fail", map[string]any{"lease_token": lease, "error": "x"})
		b := e.login(acmeToken)
		tok := csrf(t, b.get("/tenants/acme/jobs").must(t, http.StatusOK).body)

		var many []string
		for i := range 51 {
			many = append(many, fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
		}
		for query, want := range map[string]string{
			selection("retry", "", many...).Encode():      "at most 50 jobs",
			selection("retry", "").Encode():               "no job is selected",
			selection("retry", "", "not-a-uuid").Encode(): "not a job id",
			selection("explode", "", failed).Encode():     "no bulk action",
			url.Values{"job": {failed}}.Encode():          "no bulk action",
		} {
			b.get("/tenants/acme/jobs/bulk?"+query).must(t, http.StatusBadRequest, want)
			form, _ := url.ParseQuery(query)
			form.Set("csrf", tok)
			b.post("/tenants/acme/jobs/bulk", form).must(t, http.StatusBadRequest, want)
		}
		// The same id twice is one job.
		b.get("/tenants/acme/jobs/bulk?"+selection("retry", "", failed, failed).Encode()).must(t, http.StatusOK, "1 will be retried.")

		// No CSRF token, a wrong one, another origin: refused, nothing done.
		form := selection("retry", "", failed)
		b.post("/tenants/acme/jobs/bulk", form).must(t, http.StatusForbidden, "did not come from this dashboard")
		form.Set("csrf", "forged")
		b.post("/tenants/acme/jobs/bulk", form).must(t, http.StatusForbidden)
		form.Set("csrf", tok)
		req, _ := http.NewRequest("POST", e.URL+"/tenants/acme/jobs/bulk", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Cookie", b.cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a bulk POST from another origin: %d, want 403", resp.StatusCode)
		}
		if st := e.status(failed); st != "failed" {
			t.Fatalf("the job is %s after refused bulk retries, want failed", st)
		}
		if n := e.count("SELECT count(*) FROM {p}operator_actions"); n != 0 {
			t.Fatalf("%d operator actions after refused requests", n)
		}

		// The result comes back only to the list, whatever back says.
		done := b.post("/tenants/acme/jobs/bulk", url.Values{"csrf": {tok}, "action": {"retry"}, "job": {failed}, "back": {"//evil.example/x"}})
		if done.status != http.StatusSeeOther || !strings.HasPrefix(done.location, "/tenants/acme/jobs?") || strings.Contains(done.location, "evil") {
			t.Fatalf("bulk with back=//evil.example: %d to %q", done.status, done.location)
		}
		b.get(done.location).must(t, http.StatusOK, `<p class="flash" role="status">1 retried</p>`)
		// A result line in a link is shown only with the session's
		// signature: edited, or signed for another session, it is not.
		u, _ := url.Parse(done.location)
		q := u.Query()
		q.Set("msg", "50 deleted")
		if p := b.get("/tenants/acme/jobs?"+q.Encode()).must(t, http.StatusOK); strings.Contains(p.body, "50 deleted") || strings.Contains(p.body, `class="flash"`) {
			t.Error("an edited result line is shown")
		}
		other := e.login(acmeToken)
		if p := other.get(done.location).must(t, http.StatusOK); strings.Contains(p.body, `class="flash"`) {
			t.Error("another session shows this session's result line")
		}
	})
}

// Issue 16: a tenant token cannot act in bulk on another tenant's jobs:
// the other tenant's pages and forms are 403, and its job ids under the
// token's own tenant are not found, revealing nothing and changing
// nothing.
func TestBulkTenantIsolation(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		mine := e.enqueue("acme", acmeToken, map[string]any{"kind": "report"})
		theirs := e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "secret.invoice", "payload": map[string]any{"amount": 1}})
		b := e.login(acmeToken)
		tok := csrf(t, b.get("/tenants/acme/jobs").must(t, http.StatusOK).body)

		q := selection("cancel", "", theirs)
		p := b.get("/tenants/globex/jobs/bulk?" + q.Encode())
		if p.status != http.StatusForbidden || strings.Contains(p.body, "secret.invoice") {
			t.Errorf("GET globex's bulk page as acme: %d", p.status)
		}
		form := selection("cancel", "", theirs)
		form.Set("csrf", tok)
		b.post("/tenants/globex/jobs/bulk", form).must(t, http.StatusForbidden)

		// Under acme, globex's job is not found: shown as such, skipped.
		p = b.get("/tenants/acme/jobs/bulk?"+selection("cancel", "", theirs, mine).Encode()).must(t, http.StatusOK,
			"1 will be cancelled, 1 skipped: not found.", "tenant acme has no such job")
		if strings.Contains(p.body, "secret.invoice") {
			t.Error("the confirmation page shows globex's job")
		}
		form = selection("cancel", "", theirs, mine)
		form.Set("csrf", tok)
		done := b.post("/tenants/acme/jobs/bulk", form).must(t, http.StatusSeeOther)
		b.get(done.location).must(t, http.StatusOK, "1 cancelled, 1 skipped: not found")
		if st := e.status(theirs); st != "pending" {
			t.Fatalf("globex's job is %s after acme's bulk cancel, want pending", st)
		}
		if st := e.status(mine); st != "cancelled" {
			t.Fatalf("acme's job is %s, want cancelled", st)
		}
		if n := e.count("SELECT count(*) FROM {p}operator_actions WHERE tenant_id = 'globex'"); n != 0 {
			t.Fatalf("%d actions recorded on globex", n)
		}
	})
}
