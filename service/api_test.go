package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

func TestEnqueueShowAndList(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		job := map[string]any{"kind": "email.send", "partition": "eu", "payload": map[string]any{"to": "ada@example.com"}}
		r := e.call("POST", "/v1/tenants/acme/jobs", acmeToken, job).must(t, http.StatusCreated)
		id := r.body["job_id"].(string)
		if r.body["t_hlc"] == nil || r.body["link"] == nil || r.body["deduplicated"] != false || r.body["mode"] != "hlc-reads" || r.body["tenant"] != "acme" {
			t.Fatalf("enqueue result %s", r.raw)
		}
		again := e.call("POST", "/v1/tenants/acme/jobs", acmeToken, job).must(t, http.StatusOK)
		if again.body["job_id"] != id || again.body["deduplicated"] != true || again.body["t_hlc"] != r.body["t_hlc"] {
			t.Fatalf("second enqueue %s", again.raw)
		}

		show := e.call("GET", "/v1/tenants/acme/jobs/"+id, acmeToken, nil).must(t, http.StatusOK)
		ch := show.body["chain"].(map[string]any)
		if ch["t_hlc"] != r.body["t_hlc"] || ch["link"] != r.body["link"] || ch["chain_pos"] != 0.0 || ch["prev_link"] != nil {
			t.Fatalf("chain entry %s", show.raw)
		}
		if show.body["status"] != "pending" || show.body["in_legacy"] != true || show.body["in_hlc"] != true ||
			show.body["partition"] != "eu" || !reflect.DeepEqual(show.body["payload"], map[string]any{"to": "ada@example.com"}) {
			t.Fatalf("job %s", show.raw)
		}

		batch := e.call("POST", "/v1/tenants/acme/jobs/batch", acmeToken, map[string]any{"jobs": []map[string]any{
			{"kind": "report.build", "payload": map[string]any{"n": 1}},
			{"kind": "email.send", "partition": "eu", "payload": map[string]any{"to": "bob@example.com"}},
			{"kind": "report.build", "payload": map[string]any{"n": 2}, "run_at": "2030-01-01T00:00:00Z"},
		}}).must(t, http.StatusCreated)
		if n := len(batch.body["jobs"].([]any)); n != 3 {
			t.Fatalf("batch returned %d results", n)
		}

		// Page through all four in t_hlc order.
		var listed []string
		var thlcs []string
		cursor := ""
		for pages := 0; ; pages++ {
			path := "/v1/tenants/acme/jobs?limit=1"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			page := e.call("GET", path, acmeToken, nil).must(t, http.StatusOK)
			for _, j := range page.body["jobs"].([]any) {
				jm := j.(map[string]any)
				listed = append(listed, jm["job_id"].(string))
				thlcs = append(thlcs, jm["t_hlc"].(string))
				if _, has := jm["payload"]; has {
					t.Fatalf("payload listed without payload=true: %v", jm)
				}
			}
			cursor, _ = page.body["next_cursor"].(string)
			if cursor == "" || pages > 10 {
				break
			}
		}
		if len(listed) != 4 || listed[0] != id || !sortedStrings(thlcs) {
			t.Fatalf("listed %v (t_hlc %v)", listed, thlcs)
		}
		for _, c := range []struct {
			query string
			want  int
		}{
			{"kind=email.send", 2}, {"partition=eu", 2}, {"partition=", 2}, {"state=scheduled", 1},
			{"state=pending,scheduled", 4}, {"state=succeeded", 0}, {"kind=report.build&state=pending", 1},
		} {
			page := e.call("GET", "/v1/tenants/acme/jobs?"+c.query, acmeToken, nil).must(t, http.StatusOK)
			if n := len(page.body["jobs"].([]any)); n != c.want {
				t.Errorf("?%s: %d jobs, want %d", c.query, n, c.want)
			}
		}
		withPayload := e.call("GET", "/v1/tenants/acme/jobs?limit=1&payload=true", acmeToken, nil).must(t, http.StatusOK)
		if p := withPayload.body["jobs"].([]any)[0].(map[string]any)["payload"]; !reflect.DeepEqual(p, map[string]any{"to": "ada@example.com"}) {
			t.Fatalf("payload=true: %s", withPayload.raw)
		}
		stats := e.call("GET", "/v1/tenants/acme/stats", acmeToken, nil).must(t, http.StatusOK)
		counts := stats.body["counts"].(map[string]any)
		if counts["pending"] != 3.0 || counts["scheduled"] != 1.0 || counts["succeeded"] != 0.0 {
			t.Fatalf("stats %s", stats.raw)
		}
		v := e.call("POST", "/v1/tenants/acme/verify", acmeToken, nil).must(t, http.StatusOK)
		if v.body["valid"] != true || v.body["entries_checked"] != 4.0 {
			t.Fatalf("verify %s", v.raw)
		}
		v = e.call("POST", "/v1/tenants/acme/verify", acmeToken, map[string]any{"partition": "eu"}).must(t, http.StatusOK)
		if v.body["valid"] != true || v.body["entries_checked"] != 2.0 {
			t.Fatalf("verify eu %s", v.raw)
		}
	})
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] <= s[i-1] {
			return false
		}
	}
	return true
}

func TestLeaseLifecycleForWorkersInOtherLanguages(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		a := e.enqueue("acme", acmeToken, map[string]any{"kind": "resize", "payload": map[string]any{"img": 1}, "max_attempts": 2})
		b := e.enqueue("acme", acmeToken, map[string]any{"kind": "resize", "payload": map[string]any{"img": 2}, "max_attempts": 2})
		e.enqueue("acme", acmeToken, map[string]any{"kind": "other.kind", "payload": map[string]any{}})

		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 5, "kinds": []string{"resize"}, "lease_seconds": 60, "owner": "py-worker-1"}).must(t, http.StatusOK)
		leases := d.body["jobs"].([]any)
		if len(leases) != 2 {
			t.Fatalf("dequeued %s", d.raw)
		}
		la, lb := leases[0].(map[string]any), leases[1].(map[string]any)
		if la["job_id"] != a || lb["job_id"] != b || la["lease_owner"] != "py-worker-1" || la["attempt"] != 1.0 || la["lease_token"] == "" ||
			!reflect.DeepEqual(la["payload"], map[string]any{"img": 1.0}) {
			t.Fatalf("leases %s", d.raw)
		}
		// The lease token is never shown outside the dequeue.
		show := e.call("GET", "/v1/tenants/acme/jobs/"+a, acmeToken, nil).must(t, http.StatusOK)
		if strings.Contains(string(show.raw), la["lease_token"].(string)) || show.body["status"] != "running" {
			t.Fatalf("show of a running job: %s", show.raw)
		}

		// Each job has a token of its own: one job's cannot end another's.
		if la["lease_token"] == lb["lease_token"] {
			t.Fatalf("two jobs of one dequeue share the lease token %v", la["lease_token"])
		}
		if r := e.call("POST", "/v1/tenants/acme/jobs/"+b+"/complete", acmeToken, map[string]any{"lease_token": la["lease_token"]}); r.must(t, http.StatusConflict).errCode() != "lease_lost" {
			t.Fatalf("complete of b with a's token: %s", r.raw)
		}
		wrong := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/complete", acmeToken, map[string]any{"lease_token": uuid.NewString()})
		if wrong.must(t, http.StatusConflict).errCode() != "lease_lost" || e.statusOf(a) != "running" {
			t.Fatalf("complete with a wrong token: %s, status %s", wrong.raw, e.statusOf(a))
		}
		ext := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/extend", acmeToken, map[string]any{"lease_token": la["lease_token"], "lease_seconds": 120}).must(t, http.StatusOK)
		if want := e.Wall.UnixMilli() + 120_000; ext.body["lease_expires_at"] != time.UnixMilli(want).UTC().Format(time.RFC3339Nano) {
			t.Fatalf("extend: %s, want expiry %v", ext.raw, time.UnixMilli(want).UTC())
		}
		first := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/complete", acmeToken, map[string]any{"lease_token": la["lease_token"]}).must(t, http.StatusOK)
		if st := e.statusOf(a); st != "succeeded" {
			t.Fatalf("after complete: %s", st)
		}
		// Issue 16: a client retrying a completion whose answer it lost,
		// with the same lease token, gets the first answer again.
		again := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/complete", acmeToken, map[string]any{"lease_token": la["lease_token"]}).must(t, http.StatusOK)
		if string(again.raw) != string(first.raw) {
			t.Fatalf("second complete answered %s, the first %s", again.raw, first.raw)
		}
		// Another token on the finished job is told it is done.
		other := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/complete", acmeToken, map[string]any{"lease_token": uuid.NewString()})
		if other.must(t, http.StatusConflict).errCode() != "job_finished" || !strings.Contains(string(other.raw), "already succeeded") {
			t.Fatalf("complete of a finished job with another token: %s", other.raw)
		}
		if r := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/fail", acmeToken, map[string]any{"lease_token": la["lease_token"]}); r.must(t, http.StatusConflict).errCode() != "job_finished" {
			t.Fatalf("fail after its own complete: %s", r.raw)
		}
		if !strings.Contains(string(wrong.raw), "another lease") {
			t.Fatalf("complete with a wrong token while another lease holds: %s", wrong.raw)
		}

		f := e.call("POST", "/v1/tenants/acme/jobs/"+b+"/fail", acmeToken, map[string]any{"lease_token": lb["lease_token"], "error": "disk full", "retry_after_seconds": 10}).must(t, http.StatusOK)
		if f.body["retried"] != true || f.body["status"] != "scheduled" {
			t.Fatalf("fail with retry: %s", f.raw)
		}
		if again := e.call("POST", "/v1/tenants/acme/jobs/"+b+"/fail", acmeToken, map[string]any{"lease_token": lb["lease_token"], "error": "disk full", "retry_after_seconds": 10}).must(t, http.StatusOK); string(again.raw) != string(f.raw) {
			t.Fatalf("second fail answered %s, the first %s", again.raw, f.raw)
		}
		if d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"kinds": []string{"resize"}}).must(t, http.StatusOK); len(d.body["jobs"].([]any)) != 0 {
			t.Fatalf("retry handed out before its time: %s", d.raw)
		}
		e.Wall.Advance(11 * time.Second)
		d = e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"kinds": []string{"resize"}}).must(t, http.StatusOK)
		lb2 := d.body["jobs"].([]any)[0].(map[string]any)
		if lb2["job_id"] != b || lb2["attempt"] != 2.0 {
			t.Fatalf("retry: %s", d.raw)
		}
		old := e.call("POST", "/v1/tenants/acme/jobs/"+b+"/fail", acmeToken, map[string]any{"lease_token": lb["lease_token"], "error": "stale"})
		if old.must(t, http.StatusConflict).errCode() != "lease_lost" {
			t.Fatalf("fail with the first attempt's token: %s", old.raw)
		}
		f = e.call("POST", "/v1/tenants/acme/jobs/"+b+"/fail", acmeToken, map[string]any{"lease_token": lb2["lease_token"], "error": "still full"}).must(t, http.StatusOK)
		if f.body["retried"] != false || f.body["status"] != "failed" {
			t.Fatalf("last attempt: %s", f.raw)
		}
		show = e.call("GET", "/v1/tenants/acme/jobs/"+b, acmeToken, nil).must(t, http.StatusOK)
		if show.body["status"] != "failed" || show.body["last_error"] != "still full" || show.body["attempts"] != 2.0 {
			t.Fatalf("failed job: %s", show.raw)
		}

		c := e.enqueue("acme", acmeToken, map[string]any{"kind": "resize", "payload": map[string]any{"img": 3}})
		e.call("POST", "/v1/tenants/acme/jobs/"+c+"/cancel", acmeToken, map[string]any{"reason": "not needed"}).must(t, http.StatusOK)
		if r := e.call("POST", "/v1/tenants/acme/jobs/"+c+"/cancel", acmeToken, nil); r.must(t, http.StatusConflict).errCode() != "job_finished" {
			t.Fatalf("second cancel: %s", r.raw)
		}
		// A job cancelled while leased: its worker's complete gets 409.
		d = e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"kinds": []string{"other.kind"}}).must(t, http.StatusOK)
		lo := d.body["jobs"].([]any)[0].(map[string]any)
		e.call("POST", "/v1/tenants/acme/jobs/"+lo["job_id"].(string)+"/cancel", adminToken, nil).must(t, http.StatusOK)
		if r := e.call("POST", "/v1/tenants/acme/jobs/"+lo["job_id"].(string)+"/complete", acmeToken, map[string]any{"lease_token": lo["lease_token"]}); r.must(t, http.StatusConflict).errCode() != "job_finished" || !strings.Contains(string(r.raw), "already cancelled") {
			t.Fatalf("complete after cancel: %s", r.raw)
		}
	})
}

// TestBadInputWritesNothing: every rejected request gets a 4xx with a JSON
// error naming the field, and no row is written.
func TestBadInputWritesNothing(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		existing := e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "payload": map[string]any{}})
		before := e.rows()
		big := `{"kind":"k","payload":{"x":"` + strings.Repeat("a", 2000) + `"}}`
		cases := []struct {
			name          string
			method, path  string
			body          any
			status        int
			field, code   string
			withoutBearer bool
		}{
			{"invalid JSON", "POST", "/v1/tenants/acme/jobs", `{"kind":`, 400, "", "invalid_json", false},
			{"not an object", "POST", "/v1/tenants/acme/jobs", `[1,2]`, 400, "", "invalid_json", false},
			{"two values", "POST", "/v1/tenants/acme/jobs", `{"kind":"k"} {"kind":"k"}`, 400, "", "invalid_json", false},
			{"empty body", "POST", "/v1/tenants/acme/jobs", "", 400, "", "invalid_json", false},
			{"unknown field", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","payload":{},"colour":"red"}`, 400, "colour", "unknown_field", false},
			{"wrong type", "POST", "/v1/tenants/acme/jobs", `{"kind":7}`, 400, "kind", "invalid_field", false},
			{"oversized payload", "POST", "/v1/tenants/acme/jobs", big, 413, "payload", "too_large", false},
			{"bad tenant", "POST", "/v1/tenants/no%20spaces/jobs", `{"kind":"k"}`, 400, "tenant", "invalid_field", false},
			{"bad partition", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","partition":"` + strings.Repeat("p", 300) + `"}`, 400, "partition", "invalid_field", false},
			{"bad kind", "POST", "/v1/tenants/acme/jobs", `{"kind":"bad kind!"}`, 400, "kind", "invalid_field", false},
			{"missing kind", "POST", "/v1/tenants/acme/jobs", `{"payload":{}}`, 400, "kind", "invalid_field", false},
			{"bad run_at", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","run_at":"tomorrow"}`, 400, "run_at", "invalid_field", false},
			{"bad priority", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","priority":99999}`, 400, "priority", "invalid_field", false},
			{"bad max_attempts", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","max_attempts":-1}`, 400, "max_attempts", "invalid_field", false},
			{"NUL in payload", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","payload":{"a":"\u0000"}}`, 400, "payload", "invalid_field", false},
			{"http job to a host not allowed", "POST", "/v1/tenants/acme/jobs", `{"kind":"http","payload":{"url":"http://evil.example/"}}`, 400, "payload.url", "invalid_field", false},
			{"wrong content type", "POST", "/v1/tenants/acme/jobs", []byte("kind=k"), 415, "", "unsupported_media_type", false},
			{"batch: bad third job", "POST", "/v1/tenants/acme/jobs/batch", `{"jobs":[{"kind":"a"},{"kind":"b"},{"kind":"bad kind"}]}`, 400, "jobs[2].kind", "invalid_field", false},
			{"batch: empty", "POST", "/v1/tenants/acme/jobs/batch", `{"jobs":[]}`, 400, "jobs", "invalid_field", false},
			{"batch: oversized payload", "POST", "/v1/tenants/acme/jobs/batch", `{"jobs":[{"kind":"a"},` + big + `]}`, 413, "jobs[1].payload", "too_large", false},
			// Issue 14: a run_at no read could write, identifiers that
			// decoded to U+FFFD, duplicate and case-variant names, an
			// oversized batch counted before decoding, U+0000 in text.
			{"run_at after year 9999", "POST", "/v1/tenants/acme/jobs", `{"kind":"y10k","run_at":"9999-12-31T23:59:59-23:59"}`, 400, "run_at", "invalid_field", false},
			{"invalid UTF-8 in partition", "POST", "/v1/tenants/acme/jobs", "{\"kind\":\"k\",\"partition\":\"order-\xfe\"}", 400, "", "invalid_json", false},
			{"invalid UTF-8 in idempotency_key", "POST", "/v1/tenants/acme/jobs", "{\"kind\":\"k\",\"idempotency_key\":\"order-\xff\"}", 400, "", "invalid_json", false},
			{"lone surrogate in idempotency_key", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","idempotency_key":"order-\ud800"}`, 400, "", "invalid_json", false},
			{"duplicate member", "POST", "/v1/tenants/acme/jobs", `{"kind":"a","kind":"b"}`, 400, "kind", "invalid_json", false},
			{"case variant of a member", "POST", "/v1/tenants/acme/jobs", `{"kind":"a","KIND":"b"}`, 400, "KIND", "unknown_field", false},
			{"case variant alone", "POST", "/v1/tenants/acme/jobs", `{"Kind":"a"}`, 400, "Kind", "unknown_field", false},
			{"duplicate member in a payload", "POST", "/v1/tenants/acme/jobs", `{"kind":"k","payload":{"a":1,"a":2}}`, 400, "payload.a", "invalid_json", false},
			{"http job: url beside URL", "POST", "/v1/tenants/acme/jobs", `{"kind":"http","payload":{"url":"http://evil.example/","URL":"http://allowed.example/"}}`, 400, "payload.URL", "invalid_field", false},
			{"batch over the limit", "POST", "/v1/tenants/acme/jobs/batch", `{"jobs":[` + strings.Repeat(`{"kind":"a"},`, 1000) + `{"kind":"a"}]}`, 400, "jobs", "invalid_field", false},
			{"U+0000 in a cancel reason", "POST", "/v1/tenants/acme/jobs/" + existing + "/cancel", `{"reason":"a\u0000b"}`, 400, "reason", "invalid_field", false},
			{"U+0000 in a fail error", "POST", "/v1/tenants/acme/jobs/" + existing + "/fail", `{"lease_token":"` + uuid.NewString() + `","error":"a\u0000b"}`, 400, "error", "invalid_field", false},
			{"U+0000 in a dequeue owner", "POST", "/v1/tenants/acme/dequeue", `{"owner":"w\u0000"}`, 400, "owner", "invalid_field", false},
			{"unknown job", "GET", "/v1/tenants/acme/jobs/" + uuid.NewString(), nil, 404, "", "not_found", false},
			{"malformed job id", "GET", "/v1/tenants/acme/jobs/not-a-uuid", nil, 400, "id", "invalid_field", false},
			{"cancel unknown job", "POST", "/v1/tenants/acme/jobs/" + uuid.NewString() + "/cancel", nil, 404, "", "not_found", false},
			{"complete without token", "POST", "/v1/tenants/acme/jobs/" + existing + "/complete", `{}`, 400, "lease_token", "invalid_field", false},
			{"complete with a malformed token", "POST", "/v1/tenants/acme/jobs/" + existing + "/complete", `{"lease_token":"x"}`, 400, "lease_token", "invalid_field", false},
			{"complete an unknown job", "POST", "/v1/tenants/acme/jobs/" + uuid.NewString() + "/complete", `{"lease_token":"` + uuid.NewString() + `"}`, 404, "", "not_found", false},
			{"complete a job not leased", "POST", "/v1/tenants/acme/jobs/" + existing + "/complete", `{"lease_token":"` + uuid.NewString() + `"}`, 409, "", "lease_lost", false},
			{"fail with a bad delay", "POST", "/v1/tenants/acme/jobs/" + existing + "/fail", `{"lease_token":"` + uuid.NewString() + `","retry_after_seconds":-1}`, 400, "retry_after_seconds", "invalid_field", false},
			{"dequeue too many", "POST", "/v1/tenants/acme/dequeue", `{"limit":100000}`, 400, "limit", "invalid_field", false},
			{"dequeue bad kind", "POST", "/v1/tenants/acme/dequeue", `{"kinds":["ok","bad kind"]}`, 400, "kinds[1]", "invalid_field", false},
			{"dequeue bad lease", "POST", "/v1/tenants/acme/dequeue", `{"lease_seconds":0.5}`, 400, "lease_seconds", "invalid_field", false},
			{"list bad state", "GET", "/v1/tenants/acme/jobs?state=sleeping", nil, 400, "state", "invalid_field", false},
			{"list bad limit", "GET", "/v1/tenants/acme/jobs?limit=0", nil, 400, "limit", "invalid_field", false},
			{"list bad cursor", "GET", "/v1/tenants/acme/jobs?cursor=garbage", nil, 400, "cursor", "invalid_field", false},
			{"list unknown parameter", "GET", "/v1/tenants/acme/jobs?sort=desc", nil, 400, "sort", "unknown_field", false},
			{"verify bad partition", "POST", "/v1/tenants/acme/verify", `{"partition":"` + strings.Repeat("p", 300) + `"}`, 400, "partition", "invalid_field", false},
			{"no token", "POST", "/v1/tenants/acme/jobs", `{"kind":"k"}`, 401, "", "unauthorized", true},
			{"unknown route", "GET", "/v1/nothing", nil, 404, "", "not_found", false},
			{"a method the route does not serve", "DELETE", "/v1/tenants/acme/jobs", nil, 405, "", "method_not_allowed", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				token := acmeToken
				if c.withoutBearer {
					token = ""
				}
				var r response
				if b, ok := c.body.([]byte); ok { // sent with a form content type
					req, _ := http.NewRequest(c.method, e.URL+c.path, strings.NewReader(string(b)))
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					r.status = resp.StatusCode
					if r.status != c.status {
						t.Fatalf("status %d, want %d", r.status, c.status)
					}
					return
				}
				r = e.call(c.method, c.path, token, c.body)
				if r.status != c.status || r.errField() != c.field || r.errCode() != c.code {
					t.Fatalf("got %d field %q code %q, want %d field %q code %q: %s", r.status, r.errField(), r.errCode(), c.status, c.field, c.code, r.raw)
				}
				if msg, _ := r.body["error"].(map[string]any)["message"].(string); msg == "" {
					t.Fatalf("no message: %s", r.raw)
				}
			})
		}
		if after := e.rows(); !reflect.DeepEqual(after, before) {
			t.Fatalf("rejected requests wrote rows: before %v, after %v", before, after)
		}
	})
}

func TestAuthentication(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		path := "/v1/tenants/globex/stats"
		e.call("GET", path, e.GlobexToken, nil).must(t, http.StatusOK)
		e.call("GET", path, adminToken, nil).must(t, http.StatusOK)
		for name, token := range map[string]string{"none": "", "unknown": "ordo_nope_nope", "hash instead of token": service.HashToken(acmeToken)} {
			r := e.call("GET", path, token, nil)
			if r.status != http.StatusUnauthorized || r.errCode() != "unauthorized" {
				t.Errorf("%s: %d %s", name, r.status, r.raw)
			}
		}
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.SetBasicAuth("globex", e.GlobexToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("basic auth: %d %v", resp.StatusCode, resp.Header)
		}
		// Revoking a database token takes effect at the next request.
		ts := e.Svc.Queue().Backend()
		toks, err := ts.ListTokens(context.Background())
		if err != nil || len(toks) != 1 {
			t.Fatal(toks, err)
		}
		if err := ts.RevokeToken(context.Background(), toks[0].ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		if r := e.call("GET", path, e.GlobexToken, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("revoked token: %d %s", r.status, r.raw)
		}
	})
}

// TestClosedDatabaseIsUnavailable: once the database is gone, every read
// and write answers 503 "unavailable" (worth retrying), never a 500 with
// the driver's words, and never a 2xx that hides the failure. Both
// backends answer alike.
func TestClosedDatabaseIsUnavailable(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		id := e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"to": "a@example.com"}})
		if err := e.Svc.Queue().Backend().Close(); err != nil {
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
			{"GET", "/v1/tenants/acme/jobs/" + id + "/proof", nil}, // not a 409 "no proof": the database is down
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

// TestPrunedJobOverTheAPI: once retention pruned a finished job's state,
// the API still shows the job, from its log entry, with status "pruned"
// and its chain entry; it leaves the job list; cancelling it is the
// conflict of a finished job, not "not found"; and enqueueing it again is
// deduplicated rather than repeated in the chain.
// Issue 14: an address that keeps presenting bad bearer tokens gets 429,
// whatever token it presents next, until its minute ends.
func TestFailedAuthenticationsAreThrottled(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), func(c *config.Config) { c.Ordo.Http.AuthFailuresPerMinute = 3 }, service.Options{})
	for range 3 {
		if r := e.call("GET", "/v1/tenants/acme/jobs", "not-a-token", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("a bad token: %d %s", r.status, r.raw)
		}
	}
	r := e.call("GET", "/v1/tenants/acme/jobs", acmeToken, nil)
	if r.status != http.StatusTooManyRequests || r.errCode() != "too_many_requests" {
		t.Fatalf("a good token after 3 failures: %d %s; want 429", r.status, r.raw)
	}
	e.Wall.Advance(time.Minute)
	e.call("GET", "/v1/tenants/acme/jobs", acmeToken, nil).must(t, http.StatusOK)
}

// Issue 14: a token with an expiry works until it and not after, on the
// API as on the dashboard (one check for both).
func TestExpiredTokenIsRefused(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		now := time.UnixMilli(e.Wall.UnixMilli())
		text, rec, err := service.NewToken("acme", false, "trial", now)
		if err != nil {
			t.Fatal(err)
		}
		rec.ExpiresAt = now.Add(time.Hour)
		if err := e.Svc.Queue().Backend().CreateToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		e.call("GET", "/v1/tenants/acme/jobs", text, nil).must(t, http.StatusOK)
		e.Wall.Advance(time.Hour)
		if r := e.call("GET", "/v1/tenants/acme/jobs", text, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("a token at its expiry: %d %s; want 401", r.status, r.raw)
		}
	})
}

// Issue 14: with PostgreSQL unreachable (every connection dropped, new
// ones refused) the API answers 503, which clients retry, not 500.
func TestUnreachableDatabaseIsUnavailable(t *testing.T) {
	proxy := testdb.NewProxy(t, testdb.NewDatabase(t))
	e := newEnv(t, proxy.URL, nil, service.Options{})
	id := e.enqueue("acme", acmeToken, map[string]any{"kind": "email", "payload": map[string]any{"to": "a@example.com"}})
	proxy.Cut()
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/tenants/acme/jobs", map[string]any{"kind": "email", "payload": map[string]any{"to": "b@example.com"}}},
		{"GET", "/v1/tenants/acme/jobs/" + id, nil},
		{"GET", "/v1/tenants/acme/jobs", nil},
		{"POST", "/v1/tenants/acme/dequeue", map[string]any{}},
	} {
		r := e.call(c.method, c.path, acmeToken, c.body)
		if r.status != http.StatusServiceUnavailable || r.errCode() != "unavailable" {
			t.Errorf("%s %s with the database unreachable: %d %s; want 503 unavailable", c.method, c.path, r.status, r.raw)
		}
	}
}

func TestPrunedJobOverTheAPI(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		job := map[string]any{"kind": "report", "payload": map[string]any{"n": 1}}
		id := e.enqueue("acme", acmeToken, job)
		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 1}).must(t, http.StatusOK)
		lease := d.body["jobs"].([]any)[0].(map[string]any)
		e.call("POST", "/v1/tenants/acme/jobs/"+id+"/complete", acmeToken, map[string]any{"lease_token": lease["lease_token"]}).must(t, http.StatusOK)

		e.Wall.Advance(25 * time.Hour)
		if r, err := e.Svc.Queue().Prune(context.Background(), queue.Retention{}); err != nil || r.HLC != 1 || r.Legacy != 1 {
			t.Fatalf("Prune: %+v, %v; want the job's row on each side (dual-write)", r, err)
		}

		show := e.call("GET", "/v1/tenants/acme/jobs/"+id, acmeToken, nil).must(t, http.StatusOK)
		if show.body["status"] != "pruned" || show.body["kind"] != "report" || show.body["chain"] == nil || show.body["updated_at"] != nil {
			t.Fatalf("show of a pruned job: %s", show.raw)
		}
		list := e.call("GET", "/v1/tenants/acme/jobs", acmeToken, nil).must(t, http.StatusOK)
		if jobs := list.body["jobs"].([]any); len(jobs) != 0 {
			t.Errorf("the list shows a pruned job: %s", list.raw)
		}
		if c := e.call("POST", "/v1/tenants/acme/jobs/"+id+"/cancel", acmeToken, map[string]any{}); c.status != http.StatusConflict || c.errCode() != "job_finished" {
			t.Errorf("cancel of a pruned job: %d %s; want 409 job_finished", c.status, c.raw)
		}
		again := e.call("POST", "/v1/tenants/acme/jobs", acmeToken, job).must(t, http.StatusOK)
		if again.body["job_id"] != id || again.body["deduplicated"] != true {
			t.Errorf("the pruned job enqueued again: %s; want it deduplicated", again.raw)
		}
		if other := e.call("GET", "/v1/tenants/globex/jobs/"+id, e.GlobexToken, nil); other.status != http.StatusNotFound {
			t.Errorf("another tenant reads a pruned job: %d %s", other.status, other.raw)
		}
	})
}

// Issue 16: a method an API path does not serve is 405 with Allow, not 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil, service.Options{})
	for path, allow := range map[string]string{
		"/v1/tenants/acme/jobs":         "GET, POST",
		"/v1/tenants/acme/jobs/batch":   "GET, POST, DELETE", // GET and DELETE read it as a job id (then 400)
		"/v1/tenants/acme/dequeue":      "POST",
		"/v1/tenants/acme/checkpoints":  "GET",
		"/v1/tenants/acme/no-such-path": "",
	} {
		req, _ := http.NewRequest("PUT", e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+acmeToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusMethodNotAllowed
		if allow == "" {
			want = http.StatusNotFound
		}
		if resp.StatusCode != want || resp.Header.Get("Allow") != allow {
			t.Errorf("PUT %s: %d, Allow %q; want %d, %q", path, resp.StatusCode, resp.Header.Get("Allow"), want, allow)
		}
	}
}

// Issue 16: the Idempotency-Key header is the job's idempotency_key.
func TestIdempotencyKeyHeader(t *testing.T) {
	e := newEnv(t, testdb.SQLiteURL(t), nil, service.Options{})
	post := func(path, key, body string) response {
		t.Helper()
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acmeToken)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := response{status: resp.StatusCode}
		if err := json.NewDecoder(resp.Body).Decode(&r.body); err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := post("/v1/tenants/acme/jobs", "order-7", `{"kind":"email","payload":{"n":1}}`)
	first.must(t, http.StatusCreated)
	again := post("/v1/tenants/acme/jobs", "order-7", `{"kind":"email","payload":{"n":1}}`)
	if again.must(t, http.StatusOK).body["job_id"] != first.body["job_id"] || again.body["deduplicated"] != true {
		t.Fatalf("the same key by header: %v then %v", first.body, again.body)
	}
	inBody := post("/v1/tenants/acme/jobs", "", `{"kind":"email","idempotency_key":"order-7","payload":{"n":1}}`)
	if inBody.must(t, http.StatusOK).body["job_id"] != first.body["job_id"] {
		t.Fatalf("the key in the body names another job: %v", inBody.body)
	}
	if r := post("/v1/tenants/acme/jobs", "order-8", `{"kind":"email","idempotency_key":"order-7"}`); r.status != http.StatusBadRequest || r.errField() != "idempotency_key" {
		t.Fatalf("header and body disagree: %d %v", r.status, r.body)
	}
	if r := post("/v1/tenants/acme/jobs/batch", "order-9", `{"jobs":[{"kind":"email"}]}`); r.status != http.StatusBadRequest || r.errField() != "Idempotency-Key" {
		t.Fatalf("a batch with the header: %d %v", r.status, r.body)
	}
	// Issue 15: the key with another payload is a conflict, not a match.
	if r := post("/v1/tenants/acme/jobs", "order-7", `{"kind":"email","payload":{"n":2}}`); r.status != http.StatusConflict ||
		r.errCode() != "idempotency_conflict" || r.errField() != "idempotency_key" {
		t.Fatalf("the same key, another payload: %d %v", r.status, r.body)
	}
	if r := post("/v1/tenants/acme/jobs/batch", "", `{"jobs":[{"kind":"email","payload":{"n":3}},{"kind":"email","idempotency_key":"order-7","payload":{"n":2}}]}`); r.status != http.StatusConflict ||
		r.errCode() != "idempotency_conflict" || r.errField() != "jobs[1].idempotency_key" {
		t.Fatalf("a batch with a conflict: %d %v", r.status, r.body)
	}
	if list := e.call("GET", "/v1/tenants/acme/jobs", acmeToken, nil).must(t, http.StatusOK); len(list.body["jobs"].([]any)) != 1 {
		t.Fatalf("refused enqueues wrote jobs: %s", list.raw)
	}
}

// Issue 16: retry and delete routes. A failed or cancelled job is retried
// (due now, attempts reset); a finished job's state is deleted, its chain
// entry kept, so it reads as pruned; an unfinished job is refused with
// its state named, and nothing changes.
func TestRetryAndDeleteRoutes(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		a := e.enqueue("acme", acmeToken, map[string]any{"kind": "resize", "payload": map[string]any{"img": 1}, "max_attempts": 1})
		pending := e.enqueue("acme", acmeToken, map[string]any{"kind": "resize", "payload": map[string]any{"img": 2}})

		// Not retryable while pending; not deletable either.
		if r := e.call("POST", "/v1/tenants/acme/jobs/"+pending+"/retry", acmeToken, nil); r.must(t, http.StatusConflict).errCode() != "not_retryable" || !strings.Contains(string(r.raw), "is pending") {
			t.Fatalf("retry of a pending job: %s", r.raw)
		}
		if r := e.call("DELETE", "/v1/tenants/acme/jobs/"+pending, acmeToken, nil); r.must(t, http.StatusConflict).errCode() != "job_not_finished" || !strings.Contains(string(r.raw), "is pending") {
			t.Fatalf("delete of a pending job: %s", r.raw)
		}
		if st := e.statusOf(pending); st != "pending" {
			t.Fatalf("refused delete left the job %s", st)
		}

		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 1}).must(t, http.StatusOK)
		l := d.body["jobs"].([]any)[0].(map[string]any)
		if l["job_id"] != a {
			t.Fatalf("dequeued %s, want %s", d.raw, a)
		}
		e.call("POST", "/v1/tenants/acme/jobs/"+a+"/fail", acmeToken, map[string]any{"lease_token": l["lease_token"], "error": "boom"}).must(t, http.StatusOK)
		if st := e.statusOf(a); st != "failed" {
			t.Fatalf("after its one attempt failed: %s", st)
		}
		r := e.call("POST", "/v1/tenants/acme/jobs/"+a+"/retry", acmeToken, nil).must(t, http.StatusOK)
		if r.body["status"] != "pending" || e.statusOf(a) != "pending" {
			t.Fatalf("retry: %s, status %s", r.raw, e.statusOf(a))
		}
		show := e.call("GET", "/v1/tenants/acme/jobs/"+a, acmeToken, nil).must(t, http.StatusOK)
		if show.body["attempts"] != 0.0 {
			t.Fatalf("retried job: %s", show.raw)
		}

		// Run it to success, then delete it: it reads as pruned, twice.
		d = e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 2}).must(t, http.StatusOK)
		for _, x := range d.body["jobs"].([]any) {
			l := x.(map[string]any)
			e.call("POST", "/v1/tenants/acme/jobs/"+l["job_id"].(string)+"/complete", acmeToken, map[string]any{"lease_token": l["lease_token"]}).must(t, http.StatusOK)
		}
		for range 2 {
			del := e.call("DELETE", "/v1/tenants/acme/jobs/"+a, acmeToken, nil).must(t, http.StatusOK)
			if del.body["status"] != "pruned" {
				t.Fatalf("delete: %s", del.raw)
			}
		}
		show = e.call("GET", "/v1/tenants/acme/jobs/"+a, acmeToken, nil).must(t, http.StatusOK)
		if show.body["status"] != "pruned" || show.body["chain"] == nil {
			t.Fatalf("deleted job: %s", show.raw)
		}
		if v := e.call("POST", "/v1/tenants/acme/verify", acmeToken, nil).must(t, http.StatusOK); v.body["valid"] != true {
			t.Fatalf("verify after a delete: %s", v.raw)
		}
		if r := e.call("DELETE", "/v1/tenants/acme/jobs/"+uuid.NewString(), acmeToken, nil); r.status != http.StatusNotFound {
			t.Fatalf("delete of an unknown job: %d %s", r.status, r.raw)
		}
	})
}

// Issue 16: dequeue can wait for work (wait_seconds). A waiting dequeue
// hands out a job enqueued while it waits, and a stopping service ends
// the wait at once rather than holding its shutdown.
func TestDequeueLongPoll(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		waits := testsignal.New[struct{}]()
		e := newEnv(t, dbURL, nil, service.Options{OnLongPollWait: func() { waits.Record(struct{}{}) }})
		for _, bad := range []any{-1, 31, "5"} {
			r := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"wait_seconds": bad})
			if r.must(t, http.StatusBadRequest); !strings.Contains(string(r.raw), "wait_seconds") {
				t.Errorf("wait_seconds %v: %s", bad, r.raw)
			}
		}

		got := make(chan callResult, 1)
		go func() {
			got <- e.callNoFatal("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"wait_seconds": 25, "limit": 5})
		}()
		waits.Await(t, "the dequeue to wait", func(struct{}) bool { return true })
		id := e.enqueue("acme", acmeToken, map[string]any{"kind": "late", "payload": map[string]any{}})
		r := <-got
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("long poll: %v %d %s", r.err, r.status, r.raw)
		}
		if jobs := r.body["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["job_id"] != id {
			t.Fatalf("long poll handed out %s, want %s", r.raw, id)
		}

		// Shutdown ends a wait.
		go func() {
			got <- e.callNoFatal("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"wait_seconds": 25})
		}()
		n := 0
		waits.Await(t, "the second dequeue to wait", func(struct{}) bool { n++; return n == 2 })
		done := make(chan error, 1)
		go func() { done <- e.Svc.Shutdown(context.Background()) }()
		if r := <-got; r.err != nil || r.status != http.StatusOK || len(r.body["jobs"].([]any)) != 0 {
			t.Fatalf("a wait ended by shutdown: %v %d %s", r.err, r.status, r.raw)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// Issue 16: a list can come newest first, and carry the tenant's totals
// per state (asked for: counting finished jobs reads every row), whatever
// the page's filter.
func TestListTotals(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		var ids []string
		for i := range 3 {
			ids = append(ids, e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "payload": map[string]any{"i": i}}))
		}
		// Newest first, as asked.
		newest := e.call("GET", "/v1/tenants/acme/jobs?order=newest&limit=2", acmeToken, nil).must(t, http.StatusOK)
		if js := newest.body["jobs"].([]any); len(js) != 2 || js[0].(map[string]any)["job_id"] != ids[2] || js[1].(map[string]any)["job_id"] != ids[1] {
			t.Fatalf("order=newest: %s, want %s then %s", newest.raw, ids[2], ids[1])
		}
		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 1}).must(t, http.StatusOK)
		l := d.body["jobs"].([]any)[0].(map[string]any)
		e.call("POST", "/v1/tenants/acme/jobs/"+l["job_id"].(string)+"/complete", acmeToken, map[string]any{"lease_token": l["lease_token"]}).must(t, http.StatusOK)

		plain := e.call("GET", "/v1/tenants/acme/jobs?limit=1", acmeToken, nil).must(t, http.StatusOK)
		if _, ok := plain.body["totals"]; ok {
			t.Fatalf("totals without asking: %s", plain.raw)
		}
		r := e.call("GET", "/v1/tenants/acme/jobs?limit=1&state=succeeded&totals=true", acmeToken, nil).must(t, http.StatusOK)
		totals, _ := r.body["totals"].(map[string]any)
		if totals["pending"] != 2.0 || totals["succeeded"] != 1.0 || totals["failed"] != 0.0 || len(r.body["jobs"].([]any)) != 1 {
			t.Fatalf("list with totals: %s", r.raw)
		}
		if b := e.call("GET", "/v1/tenants/acme/jobs?totals=maybe", acmeToken, nil); b.must(t, http.StatusBadRequest).errCode() != "invalid_field" || !strings.Contains(string(b.raw), `"field":"totals"`) {
			t.Fatalf("totals=maybe: %s", b.raw)
		}
	})
}
