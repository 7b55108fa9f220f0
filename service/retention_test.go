package service_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

// TestPrunedJobOverTheAPI: once retention pruned a finished job's state,
// the API still shows the job, from its log entry, with status "pruned"
// and its chain entry; it leaves the job list; cancelling it is the
// conflict of a finished job, not "not found"; and enqueueing it again is
// deduplicated rather than repeated in the chain.
func TestPrunedJobOverTheAPI(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil, service.Options{})
		job := map[string]any{"kind": "report", "payload": map[string]any{"n": 1}}
		id := e.enqueue("acme", acmeToken, job)
		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 1}).must(t, http.StatusOK)
		lease := d.body["jobs"].([]any)[0].(map[string]any)
		e.call("POST", "/v1/tenants/acme/jobs/"+id+"/complete", acmeToken, map[string]any{"lease_token": lease["lease_token"]}).must(t, http.StatusOK)

		e.wall.Advance(25 * time.Hour)
		if r, err := e.svc.Queue().Prune(context.Background(), queue.Retention{}); err != nil || r.HLC != 1 || r.Legacy != 1 {
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
		if other := e.call("GET", "/v1/tenants/globex/jobs/"+id, e.globexToken, nil); other.status != http.StatusNotFound {
			t.Errorf("another tenant reads a pruned job: %d %s", other.status, other.raw)
		}
	})
}
