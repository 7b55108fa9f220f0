package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

// at is the test wall clock's day (servicetest.Wall starts at 09:00 UTC)
// at hh:mm:ss.
func at(hh, mm, ss int) time.Time { return time.Date(2026, 1, 8, hh, mm, ss, 0, time.UTC) }

// setWall moves the env's wall clock to t.
func (e *env) setWall(t time.Time) { e.Wall.Set(t.UnixMilli()) }

// batch enqueues jobs in one batch (so they share one instant) and
// returns their ids.
func (e *env) batch(tenant, token string, jobs ...map[string]any) []string {
	e.T.Helper()
	status, out := e.api("POST", "/v1/tenants/"+tenant+"/jobs/batch", token, map[string]any{"jobs": jobs})
	if status != http.StatusCreated {
		e.T.Fatalf("batch: %d %v", status, out)
	}
	var ids []string
	for _, r := range out["jobs"].([]any) {
		ids = append(ids, r.(map[string]any)["job_id"].(string))
	}
	return ids
}

// leased is a job leased through the API.
type leased struct{ id, token string }

// dequeue leases up to limit of tenant's jobs (of kinds, if any) through
// the API and fails the test unless it got want of them.
func (e *env) dequeue(tenant, token string, want int, kinds ...string) []leased {
	e.T.Helper()
	body := map[string]any{"limit": want}
	if len(kinds) > 0 {
		body["kinds"] = kinds
	}
	status, out := e.api("POST", "/v1/tenants/"+tenant+"/dequeue", token, body)
	if status != http.StatusOK || len(out["jobs"].([]any)) != want {
		e.T.Fatalf("dequeue %d of %s: %d %v", want, tenant, status, out)
	}
	var ls []leased
	for _, j := range out["jobs"].([]any) {
		m := j.(map[string]any)
		ls = append(ls, leased{m["job_id"].(string), m["lease_token"].(string)})
	}
	return ls
}

func (e *env) finish(tenant, token string, l leased, ok bool) {
	e.T.Helper()
	path, body := "/complete", map[string]any{"lease_token": l.token}
	if !ok {
		path, body = "/fail", map[string]any{"lease_token": l.token, "error": "boom", "retry": false}
	}
	if status, out := e.api("POST", "/v1/tenants/"+tenant+"/jobs/"+l.id+path, token, body); status != http.StatusOK {
		e.T.Fatalf("%s %s: %d %v", path, l.id, status, out)
	}
}

// bucketNumbers are one bucket's numbers as the page's data-* attributes
// carry them: enqueued, completed, failed, started, mean and max wait (ms).
type bucketNumbers [6]int64

var (
	tableRow = regexp.MustCompile(`<tr data-bucket="([^"]+)" data-enqueued="(\d+)" data-completed="(\d+)" data-failed="(\d+)" data-started="(\d+)" data-wait-mean-ms="(\d+)" data-wait-max-ms="(\d+)"`)
	svgHit   = regexp.MustCompile(`<rect [^>]*data-bucket="([^"]+)" data-enqueued="(\d+)" data-completed="(\d+)" data-failed="(\d+)" data-started="(\d+)" data-wait-mean-ms="(\d+)" data-wait-max-ms="(\d+)"`)
)

// bucketsOf reads the buckets of an overview's table and charts, checks
// that both charts and the table say the same, and returns them by start.
func bucketsOf(t *testing.T, body string, want int) map[string]bucketNumbers {
	t.Helper()
	read := func(re *regexp.Regexp, what string, n int) map[string]bucketNumbers {
		ms := re.FindAllStringSubmatch(body, -1)
		if len(ms) != n {
			t.Fatalf("%s: %d buckets, want %d:\n%s", what, len(ms), n, body)
		}
		out := map[string]bucketNumbers{}
		for _, m := range ms {
			var b bucketNumbers
			for i := range b {
				b[i], _ = strconv.ParseInt(m[i+2], 10, 64)
			}
			if prev, dup := out[m[1]]; dup && prev != b {
				t.Fatalf("%s: bucket %s drawn as %v and as %v", what, m[1], prev, b)
			}
			out[m[1]] = b
		}
		return out
	}
	table := read(tableRow, "the table", want)
	charts := read(svgHit, "the charts", 2*want) // each bucket in both charts
	for k, v := range table {
		if charts[k] != v {
			t.Fatalf("bucket %s: the table says %v, the charts %v", k, v, charts[k])
		}
	}
	return table
}

// expectBuckets checks the buckets named in want and that every other is
// empty.
func expectBuckets(t *testing.T, what string, got map[string]bucketNumbers, want map[time.Time]bucketNumbers) {
	t.Helper()
	for start, b := range got {
		ts, err := time.Parse(time.RFC3339, start)
		if err != nil {
			t.Fatalf("%s: bucket %q: %v", what, start, err)
		}
		if w := want[ts]; b != w {
			t.Errorf("%s: bucket %s = %v, want %v (enqueued, completed, failed, started, mean and max wait ms)", what, start, b, w)
		}
	}
	for ts := range want {
		if _, ok := got[ts.Format(time.RFC3339)]; !ok {
			t.Errorf("%s: no bucket %s", what, ts.Format(time.RFC3339))
		}
	}
}

// The overview's charts show, in the right minutes, the jobs enqueued,
// completed and failed and the waits for their first start, for every
// tenant or one; the day chart sums them per 15 minutes; a tenant token
// sees its tenant's only; the numbers stand after the minutes are rolled
// up and the jobs pruned.
func TestActivityCharts(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		// Jobs differ by payload: a job's id derives from its content, so
		// identical ones would be one job.
		report := func(n string) map[string]any {
			return map[string]any{"kind": "report", "max_attempts": 1, "payload": map[string]any{"n": n}}
		}
		// 09:00: three acme jobs.
		e.batch("acme", acmeToken, report("a"), report("b"), report("c"))
		// 09:01:30: two of them start (90 s after they were due); one
		// succeeds, one fails.
		e.setWall(at(9, 1, 30))
		ls := e.dequeue("acme", acmeToken, 2)
		e.finish("acme", acmeToken, ls[0], true)
		e.finish("acme", acmeToken, ls[1], false)
		// 09:02:10: a globex job; 09:04:00: the third acme job starts
		// (240 s) and succeeds, and the globex job starts (110 s).
		e.setWall(at(9, 2, 10))
		e.batch("globex", e.GlobexToken, report("a"))
		e.setWall(at(9, 4, 0))
		e.finish("acme", acmeToken, e.dequeue("acme", acmeToken, 1)[0], true)
		e.dequeue("globex", e.GlobexToken, 1)
		e.setWall(at(9, 5, 20))

		admin := e.login(adminToken)
		p := admin.get("/").must(t, http.StatusOK, `id="chart-counts"`, `id="chart-wait"`, `<title id="chart-counts-title">`,
			`data-window="hour"`, `data-scope="every tenant"`, "Activity of every tenant")
		everyone := map[time.Time]bucketNumbers{
			at(9, 0, 0): {3, 0, 0, 0, 0, 0},
			at(9, 1, 0): {0, 1, 1, 2, 90_000, 90_000},
			at(9, 2, 0): {1, 0, 0, 0, 0, 0},
			at(9, 4, 0): {0, 1, 0, 2, 175_000, 240_000},
		}
		expectBuckets(t, "admin, last hour", bucketsOf(t, p.body, 60), everyone)
		if !strings.Contains(p.body, `data-wait-max-ms="0" data-partial>`) || !strings.Contains(p.body, "2026-01-08 09:05 (so far)") {
			t.Error("the last bucket, 09:05, is not marked as not over yet")
		}
		// The text alternative says it in words, with the axes in UTC.
		for _, want := range []string{"In all: 4 enqueued, 2 completed, 1 failed.", "4 jobs started; mean wait 2.2 min; the longest 4 min, at 09:04 UTC.",
			"time (UTC)", ">09:00<"} {
			if !strings.Contains(p.body, want) {
				t.Errorf("the overview lacks %q", want)
			}
		}
		// One tenant, and the day in 15-minute buckets.
		p = admin.get("/?tenant=acme").must(t, http.StatusOK, `data-scope="tenant acme"`)
		expectBuckets(t, "admin, acme", bucketsOf(t, p.body, 60), map[time.Time]bucketNumbers{
			at(9, 0, 0): {3, 0, 0, 0, 0, 0},
			at(9, 1, 0): {0, 1, 1, 2, 90_000, 90_000},
			at(9, 4, 0): {0, 1, 0, 1, 240_000, 240_000},
		})
		p = admin.get("/?window=day").must(t, http.StatusOK, `data-window="day"`, "per 15 minutes")
		expectBuckets(t, "admin, last day", bucketsOf(t, p.body, 96), map[time.Time]bucketNumbers{
			at(9, 0, 0): {4, 2, 1, 4, 132_500, 240_000},
		})
		admin.get("/?window=week").must(t, http.StatusBadRequest, "not valid")
		// A tenant token sees its own tenant's activity, whatever it asks.
		acmeB := e.login(acmeToken)
		p = acmeB.get("/?tenant=globex").must(t, http.StatusOK, `data-scope="tenant acme"`)
		if got := bucketsOf(t, p.body, 60); got[at(9, 2, 0).Format(time.RFC3339)] != (bucketNumbers{}) {
			t.Errorf("acme's charts count globex's job: %v", got[at(9, 2, 0).Format(time.RFC3339)])
		}

		// Rolled up, then pruned by retention: the same numbers.
		backend := e.Svc.Queue().Backend()
		e.setWall(at(9, 10, 0))
		if r, err := backend.RollupActivity(context.Background(), driver.RollupParams{Now: at(9, 10, 0), Backfill: time.Hour}); err != nil || !r.Until.Equal(at(9, 8, 0)) {
			t.Fatalf("RollupActivity: %+v, %v", r, err)
		}
		if n, err := backend.PruneFinished(context.Background(), driver.PruneParams{SucceededBefore: at(9, 10, 0), FailedBefore: at(9, 10, 0),
			CancelledBefore: at(9, 10, 0), Limit: 100}); err != nil || n.HLC == 0 {
			t.Fatalf("PruneFinished: %+v, %v", n, err)
		}
		p = admin.get("/").must(t, http.StatusOK)
		expectBuckets(t, "admin, after the rollup and pruning", bucketsOf(t, p.body, 60), everyone)
	})
}

// Issue 16: a 60/min trickle reads 60/min a minute and a half after it
// began (it read 19.2/min: the jobs of 1.5 minutes divided by the whole
// 5-minute window), and once the window is full, the rate is over the
// window.
func TestOverviewRateCoversOnlyTheTimeSinceTheFirstJob(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		start := at(9, 0, 0)
		for i := range 90 { // one a second
			e.setWall(start.Add(time.Duration(i) * time.Second))
			e.enqueue("acme", acmeToken, map[string]any{"kind": "tick", "payload": map[string]any{"n": i}})
		}
		e.setWall(start.Add(90 * time.Second))
		b := e.login(adminToken)
		b.get("/").must(t, http.StatusOK, `data-stat="enqueued">90<`, `<span data-rate="enqueued">60.0/min</span> · over 1.5 min`)
		// Five minutes on, the 90 jobs are 18/min over the full window.
		e.setWall(start.Add(5 * time.Minute))
		p := b.get("/").must(t, http.StatusOK, `data-stat="enqueued">90<`, `<span data-rate="enqueued">18.0/min</span>`)
		if strings.Contains(p.body, "· over") {
			t.Error("a full window is still said to cover less")
		}
	})
}

// digestArgs is the args of the periodic test jobs: kind "digest", which
// the test nodes' workers do not run, so occurrences stay pending.
type digestArgs struct {
	At time.Time `json:"at"`
}

func (digestArgs) Kind() string { return "digest" }

// quarterly is a schedule that does not describe itself: every 15
// minutes.
type quarterly struct{}

func (quarterly) Next(t time.Time) time.Time {
	return t.Truncate(15 * time.Minute).Add(15 * time.Minute)
}

// workerSetup is the worker client of a test node (withWorker).
type workerSetup struct {
	periodic []worker.PeriodicJob
	events   chan<- worker.Event // receives the client's events, if set
	// reports registers kind report in a queue "reports" that runs 3 at
	// a time (the test keeps them from running by pausing them).
	reports bool
}

// withWorker runs a worker client on the test node: MaxWorkers 7, the
// built-in kinds, and s; maintenance runs once, at start.
func withWorker(s workerSetup) (func(*config.Config), func(*service.Options)) {
	periodic, events := s.periodic, s.events
	return func(c *config.Config) {
			c.Ordo.Worker.Enabled = true
			c.Ordo.Worker.MaxWorkers = 7
		}, func(o *service.Options) {
			if s.reports {
				o.Workers = func(w *worker.Workers) error {
					return worker.AddFuncSafely(w, "report", func(context.Context, *queue.Lease) error { return errors.New("not in this test") },
						worker.KindOptions{Queue: "reports"})
				}
			}
			o.WorkerConfig = func(wc *worker.Config) {
				if s.reports {
					wc.Queues = map[string]worker.QueueConfig{"reports": {MaxWorkers: 3}}
				}
				wc.PeriodicJobs = periodic
				// One maintenance round, at start: later rounds would
				// enqueue occurrences while the test moves the clock.
				wc.MaintenanceInterval = time.Hour
				if events != nil {
					prev := wc.OnEvent
					wc.OnEvent = func(ev worker.Event) {
						prev(ev)
						select {
						case events <- ev:
						default:
						}
					}
				}
			}
		}
}

var kindRow = regexp.MustCompile(`<tr data-kind="([^"]*)" data-pending="(\d+)" data-scheduled="(\d+)" data-running="(\d+)" data-succeeded="(\d+)" data-failed="(\d+)"(?: data-worker-queue="([^"]*)")? data-paused="(true|false)"`)

// The queues page counts a tenant's jobs per kind (pending, scheduled,
// running, and completed and failed in the last hour) and in all, says
// which of this node's worker queues runs each kind with its concurrency,
// and offers pause and resume per kind and for the whole queue.
func TestQueuesPageCounts(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		cfg, opts := withWorker(workerSetup{reports: true})
		e := newEnvOpts(t, dbURL, cfg, opts)
		b := e.login(acmeToken)
		// Reports are paused first, so this node's worker leaves them.
		page := b.get("/tenants/acme/queues").must(t, http.StatusOK)
		b.post("/tenants/acme/queues/pause", map[string][]string{"csrf": {csrf(t, page.body)}, "kind": {"report"}}).must(t, http.StatusSeeOther)
		// Jobs differ by payload: a job's id derives from its content, so
		// identical ones would be one job.
		job := func(kind, n string) map[string]any {
			return map[string]any{"kind": kind, "max_attempts": 1, "payload": map[string]any{"n": n}}
		}
		later := job("report", "r4")
		later["run_at"] = at(10, 0, 0).Format(time.RFC3339)
		e.batch("acme", acmeToken, job("report", "r1"), job("report", "r2"), job("report", "r3"), later,
			job("email", "e1"), job("email", "e2"), job("email", "e3"), job("email", "e4"))
		e.batch("globex", e.GlobexToken, job("email", "e1"))
		e.setWall(at(9, 0, 5))
		ls := e.dequeue("acme", acmeToken, 3, "email")
		e.finish("acme", acmeToken, ls[0], true)
		e.finish("acme", acmeToken, ls[1], false)
		kinds := func(body string) map[string][]string {
			rows := map[string][]string{}
			for _, m := range kindRow.FindAllStringSubmatch(body, -1) {
				rows[m[1]] = m[2:]
			}
			return rows
		}
		p := b.get("/tenants/acme/queues").must(t, http.StatusOK, `id="worker-max" data-max-workers="7"`)
		rows := kinds(p.body)
		want := map[string][]string{
			"email":  {"1", "0", "1", "1", "1", "", "false"},
			"report": {"3", "1", "0", "0", "0", "reports", "true"},
			"http":   {"0", "0", "0", "0", "0", "default", "false"},
			"noop":   {"0", "0", "0", "0", "0", "default", "false"},
			"":       {"4", "1", "1", "1", "1", "", "false"}, // every kind
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Fatalf("kinds (pending, scheduled, running, completed, failed, worker queue, paused):\n got %v\nwant %v", rows, want)
		}
		for _, s := range []string{
			`data-worker-queue="reports" data-max-workers="3" data-running-here="0" data-kinds="report" data-pending="3" data-scheduled="1"`,
			`data-worker-queue="default" data-max-workers="7" data-running-here="0" data-kinds="http,noop" data-pending="0"`,
			`href="/tenants/acme/queues/resume?kind=report">Resume…`, `href="/tenants/acme/queues/pause?kind=email">Pause…`,
			`href="/tenants/acme/queues/pause?kind=">Pause all…`,
		} {
			if !strings.Contains(p.body, s) {
				t.Errorf("the queues page lacks %s", s)
			}
		}
		// An hour later the finished emails are out of the window.
		e.setWall(at(10, 0, 6))
		if got := kinds(b.get("/tenants/acme/queues").must(t, http.StatusOK).body)["email"]; fmt.Sprint(got) != fmt.Sprint([]string{"1", "0", "1", "0", "0", "", "false"}) {
			t.Errorf("an hour later, the email row is %v; want the finished jobs out of the window", got)
		}
		// Without a worker, the page says so.
		plain := newEnv(t, dbURL)
		plain.login(acmeToken).get("/tenants/acme/queues").must(t, http.StatusOK, `id="no-worker"`)
	})
}

var periodicRow = regexp.MustCompile(`<tr data-periodic="([^"]+)" data-tenant="([^"]+)" data-schedule="([^"]*)"(?: data-last="([^"]+)" data-last-job="([^"]+)")?(?: data-next="([^"]+)")?>`)

// The periodic jobs page lists the worker client's periodic jobs with
// their schedules, the last occurrence that has a job (found by its
// idempotency key) and the next one from the node's clock; a tenant token
// sees its tenant's only; a node without them says so.
func TestPeriodicPage(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		args := func(at time.Time) (worker.Args, *worker.InsertOpts) { return digestArgs{At: at}, nil }
		events := make(chan worker.Event, 64)
		cfg, opts := withWorker(workerSetup{periodic: []worker.PeriodicJob{
			{Name: "hourly-report", Schedule: worker.Every(time.Hour), TenantID: "acme", Args: args},
			{Name: "nightly", Schedule: worker.MustCron("30 2 * * *"), TenantID: "globex", Args: args},
			{Name: "quarterly", Schedule: quarterly{}, TenantID: "acme", Args: args},
		}, events: events})
		e := newEnvOpts(t, dbURL, cfg, opts)
		// The leader's round at start (09:00:00) enqueues the occurrences
		// due then: 09:00 of hourly-report and quarterly.
		jobs := map[string]string{}
		for len(jobs) < 2 {
			select {
			case ev := <-events:
				if ev.Type == worker.EventPeriodicEnqueued {
					jobs[ev.Periodic] = ev.JobID.String()
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the leader did not enqueue the periodic occurrences due at start")
			}
		}
		e.setWall(at(9, 20, 0))
		rows := func(body string) map[string][]string {
			out := map[string][]string{}
			for _, m := range periodicRow.FindAllStringSubmatch(body, -1) {
				out[m[1]] = m[2:]
			}
			return out
		}
		p := e.login(adminToken).get("/periodic").must(t, http.StatusOK, `aria-current="page">Periodic`)
		want := map[string][]string{
			"hourly-report": {"acme", "every 1h0m0s", "2026-01-08T09:00:00Z", jobs["hourly-report"], "2026-01-08T10:00:00Z"},
			"nightly":       {"globex", "30 2 * * *", "", "", "2026-01-09T02:30:00Z"},
			"quarterly":     {"acme", "dashboard_test.quarterly", "2026-01-08T09:00:00Z", jobs["quarterly"], "2026-01-08T09:30:00Z"},
		}
		if got := rows(p.body); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("periodic jobs (tenant, schedule, last, its job, next):\n got %v\nwant %v", got, want)
		}
		if !strings.Contains(p.body, "pending</span>") {
			t.Error("the last occurrence's job is not shown as pending")
		}
		acme := rows(e.login(acmeToken).get("/periodic").must(t, http.StatusOK).body)
		if _, ok := acme["nightly"]; ok || len(acme) != 2 {
			t.Errorf("an acme token sees %v; want acme's two periodic jobs only", acme)
		}
		e.login(e.GlobexToken).get("/periodic").must(t, http.StatusOK, `data-periodic="nightly"`)

		// A node with a worker and no periodic jobs, and one without a worker.
		cfg, opts = withWorker(workerSetup{})
		newEnvOpts(t, dbURL, cfg, opts).login(adminToken).get("/periodic").must(t, http.StatusOK, "This service runs no periodic jobs.")
		newEnv(t, dbURL).login(adminToken).get("/periodic").must(t, http.StatusOK, `id="no-periodic"`, "runs no worker client")
	})
}
