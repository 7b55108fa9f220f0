package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/ordo-sched/ordo/worker"
)

// chromiumPath is Debian's chromium; `make test` installs it when missing.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is git-ignored (**/testdata/screenshots/).
const screenshotDir = "testdata/screenshots"

// newBrowser starts a fresh headless chromium for the test, or fails the
// test loudly: the browser tests never skip.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("chromium not found at %s (%v): install it with `apt-get install -y chromium` (make test does, as root)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 900), // a laptop screen
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatalf("starting chromium (%s): %v", chromiumPath, err)
	}
	return ctx
}

// run runs browser steps with a timeout, failing the test with what it
// was doing.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// screenshot saves the viewport as testdata/screenshots/<backend>-<name>.png.
func screenshot(t *testing.T, ctx context.Context, backend, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, backend+"-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser drives the dashboard in a real chromium: log in, watch
// jobs enqueued through the API appear in HLC order, open a job and check
// its inclusion proof in the browser (Merkle path, link and the
// checkpoint's Ed25519 signature, with WebCrypto), verify the chain, see
// a tampered row fail verification with the right issue, and find that a
// tenant token cannot open another tenant's pages.
func TestBrowser(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		backend := "sqlite"
		if !strings.HasPrefix(dbURL, "sqlite:") {
			backend = "postgres"
		}
		// A worker client with periodic jobs of a third tenant (kinds it
		// does not run), for the periodic jobs page.
		events := make(chan worker.Event, 64)
		digest := func(at time.Time) (worker.Args, *worker.InsertOpts) { return digestArgs{At: at}, nil }
		cfg, opts := withWorker(workerSetup{events: events, periodic: []worker.PeriodicJob{
			{Name: "hourly-digest", Schedule: worker.Every(time.Hour), TenantID: "initech", Args: digest},
			{Name: "nightly-digest", Schedule: worker.MustCron("30 2 * * *"), TenantID: "initech", Args: digest},
		}})
		e := newEnvOpts(t, dbURL, cfg, opts)
		ctx := newBrowser(t)

		// Log in as admin; nothing is there yet.
		run(t, ctx, "opening the login page",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#token")))
		screenshot(t, ctx, backend, "login")
		run(t, ctx, "logging in",
			chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#jobs")), // back where it was going
		)
		screenshot(t, ctx, backend, "jobs-empty")

		// Jobs enqueued through the API appear, in HLC order, by live refresh.
		var ids []string
		for i := range 6 {
			ids = append(ids, e.enqueue("acme", acmeToken, map[string]any{"kind": []string{"report", "email"}[i%2],
				"payload": map[string]any{"n": i, "to": fmt.Sprintf("user%d@example.com", i)}}))
		}
		e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "invoice", "payload": map[string]any{"n": 1}})
		run(t, ctx, "waiting for the jobs to appear",
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("#jobs tbody tr[data-job]").length === 6`, chromedp.WithPollingTimeout(15*time.Second)))
		thlcs := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#jobs code.thlc"), c => c.textContent)`)
		if len(thlcs) != 6 || !slices.IsSorted(thlcs) {
			t.Fatalf("jobs shown with t_hlc %v: want 6, in order", thlcs)
		}
		rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#jobs tbody tr"), r => r.dataset.job)`)
		if !slices.Equal(rows, ids) {
			t.Fatalf("jobs listed %v, want the enqueue order %v", rows, ids)
		}
		screenshot(t, ctx, backend, "jobs")

		run(t, ctx, "opening the overview", chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`section[data-tenant="globex"]`)))
		screenshot(t, ctx, backend, "overview")

		// The activity charts: drawn by the server as SVG, styled by the
		// stylesheet (the CSP allows no inline style), one column per
		// minute, acme's six jobs in the 09:00 minute.
		run(t, ctx, "opening acme's charts", chromedp.Navigate(e.URL+"/?tenant=acme"), chromedp.WaitVisible(chromedp.CSS(`#chart-counts`)))
		if n := eval[int](t, ctx, `document.querySelectorAll("#chart-counts rect[data-bucket]").length`); n != 60 {
			t.Fatalf("the hour chart has %d columns, want 60", n)
		}
		if got := eval[string](t, ctx, `document.querySelector('#chart-counts rect[data-bucket="2026-01-08T09:00:00Z"]').dataset.enqueued`); got != "6" {
			t.Fatalf("the 09:00 column says %s enqueued, want 6", got)
		}
		if stroke := eval[string](t, ctx, `getComputedStyle(document.querySelector("#chart-counts .s-enqueued polyline")).stroke`); stroke != "rgb(11, 92, 173)" {
			t.Fatalf("the enqueued line's stroke is %q: the stylesheet did not style the SVG", stroke)
		}
		if w := eval[float64](t, ctx, `document.getElementById("chart-counts").getBoundingClientRect().width`); w < 300 {
			t.Fatalf("the chart is %.0f px wide", w)
		}
		if tip := eval[string](t, ctx, `document.querySelector('#chart-counts rect[data-bucket="2026-01-08T09:00:00Z"] title').textContent`); tip != "09:00 UTC (so far): 6 enqueued, 0 completed, 0 failed" {
			t.Fatalf("the 09:00 column's tooltip is %q", tip)
		}
		run(t, ctx, "opening the numbers", chromedp.Click(chromedp.CSS("#activity-numbers summary")), chromedp.WaitVisible(chromedp.CSS("#activity-table")))
		screenshot(t, ctx, backend, "overview-charts")
		run(t, ctx, "opening the day's charts", chromedp.Navigate(e.URL+"/?window=day"), chromedp.WaitVisible(chromedp.CSS(`#activity[data-window="day"] #chart-wait`)))
		if n := eval[int](t, ctx, `document.querySelectorAll("#chart-wait rect[data-bucket]").length`); n != 96 {
			t.Fatalf("the day chart has %d columns, want 96", n)
		}
		screenshot(t, ctx, backend, "overview-day")

		// The periodic jobs page, once the leader has enqueued the
		// occurrence due at start.
		for enqueued := false; !enqueued; {
			select {
			case ev := <-events:
				enqueued = ev.Type == worker.EventPeriodicEnqueued
			case <-time.After(30 * time.Second):
				t.Fatal("the leader did not enqueue the periodic occurrence due at start")
			}
		}
		run(t, ctx, "opening the periodic jobs", chromedp.Navigate(e.URL+"/periodic"),
			chromedp.WaitVisible(chromedp.CSS(`#periodic tr[data-periodic="hourly-digest"][data-last]`)))
		if next := eval[string](t, ctx, `document.querySelector('#periodic tr[data-periodic="hourly-digest"]').dataset.next`); next != "2026-01-08T10:00:00Z" {
			t.Fatalf("hourly-digest's next occurrence is %q, want 10:00 UTC", next)
		}
		screenshot(t, ctx, backend, "periodic")

		run(t, ctx, "opening the chain view",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs?view=chain&partition="),
			chromedp.WaitVisible(chromedp.CSS("#chain li.genesis")))
		if n := eval[int](t, ctx, `document.querySelectorAll("#chain .arrow.ok").length`); n != 5 {
			t.Fatalf("the chain view draws %d matching links, want 5", n)
		}
		screenshot(t, ctx, backend, "chain")

		// A job's inclusion proof, checked in the browser.
		e.checkpoint()
		run(t, ctx, "checking a proof in the browser",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs/"+ids[2]),
			chromedp.WaitEnabled(chromedp.CSS("#check-proof")),
			chromedp.Click(chromedp.CSS("#check-proof")),
			chromedp.WaitVisible(chromedp.CSS(`#proof-verdict[data-status]`)),
		)
		if st := eval[string](t, ctx, `document.getElementById("proof-verdict").dataset.status`); st != "verified" {
			steps := eval[string](t, ctx, `document.getElementById("proof-steps").innerText`)
			t.Fatalf("proof verdict %q, want verified; steps:\n%s", st, steps)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("#proof-steps li.ok").length`); n != 5 {
			t.Fatalf("%d proof steps passed, want 5 (origin, link, leaf, path, signature)", n)
		}
		if none := eval[string](t, ctx, `(document.getElementById("attempt-errors-none") || {}).textContent || ""`); none != "No attempt has failed." {
			t.Fatalf("a job that never failed: attempt history says %q", none)
		}
		screenshot(t, ctx, backend, "job-proof")

		// The same check fails on a proof whose path was changed.
		run(t, ctx, "checking a forged proof",
			chromedp.Evaluate[chromedp.Void](`(() => { const el = document.getElementById("proof");
				const p = JSON.parse(el.dataset.proof); p.hashes[0] = btoa(String.fromCharCode(...new Uint8Array(32)));
				el.dataset.proof = JSON.stringify(p); document.getElementById("proof-verdict").removeAttribute("data-status"); })()`),
			chromedp.Click(chromedp.CSS("#check-proof")),
			chromedp.WaitVisible(chromedp.CSS(`#proof-verdict[data-status]`)))
		if st := eval[string](t, ctx, `document.getElementById("proof-verdict").dataset.status`); st != "failed" {
			t.Fatalf("a forged audit path: verdict %q, want failed", st)
		}

		// Verification passes, then fails after a row is tampered with.
		run(t, ctx, "verifying the chain",
			chromedp.Navigate(e.URL+"/tenants/acme/chain"),
			chromedp.WaitVisible(chromedp.CSS("#run-verify")),
			chromedp.Click(chromedp.CSS("#run-verify")),
			chromedp.WaitVisible(chromedp.CSS(`#verdict[data-valid="true"]`)))
		screenshot(t, ctx, backend, "chain-valid")
		e.exec(`UPDATE {p}scheduler_log SET payload = '{"n":999}' WHERE CAST(job_id AS TEXT) = `+e.Ph(1), ids[3])
		run(t, ctx, "verifying the tampered chain",
			chromedp.Click(chromedp.CSS("#run-verify")),
			chromedp.WaitVisible(chromedp.CSS(`#verdict[data-valid="false"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#issues tr[data-issue="payload_hash_mismatch"]`)))
		if txt := eval[string](t, ctx, `document.querySelector('#issues tr[data-issue="payload_hash_mismatch"]').innerText`); !strings.Contains(txt, ids[3][:12]) {
			t.Fatalf("the payload_hash_mismatch issue does not name the tampered job %s: %s", ids[3], txt)
		}
		screenshot(t, ctx, backend, "chain-tampered")

		run(t, ctx, "opening the nodes", chromedp.Navigate(e.URL+"/nodes"), chromedp.WaitVisible(chromedp.CSS(`#nodes tr[data-node="test-node"]`)))
		screenshot(t, ctx, backend, "nodes")

		// Pausing a queue takes a confirmation (a plain form), then shows.
		run(t, ctx, "pausing acme's report queue",
			chromedp.Navigate(e.URL+"/tenants/acme/queues"),
			chromedp.WaitVisible(chromedp.CSS("#q-kind")),
			chromedp.SendKeys(chromedp.CSS("#q-kind"), "report"),
			chromedp.Submit(chromedp.CSS("#q-kind")),
			chromedp.WaitVisible(chromedp.CSS("#confirm")))
		screenshot(t, ctx, backend, "confirm-pause")
		run(t, ctx, "confirming the pause",
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
			chromedp.WaitVisible(chromedp.CSS("#paused")))
		if n := e.count("SELECT count(*) FROM {p}paused_queues WHERE tenant_id = 'acme' AND kind = 'report'"); n != 1 {
			t.Fatalf("after confirming the pause, %d paused acme/report queues, want 1", n)
		}
		if row := eval[map[string]string](t, ctx, `Object.assign({}, document.querySelector('#kinds tr[data-kind="report"]').dataset)`); row["paused"] != "true" || row["pending"] != "3" {
			t.Fatalf("the report row after the pause: %v; want paused, 3 pending", row)
		}
		screenshot(t, ctx, backend, "queues")

		// A tenant token sees its tenant only.
		run(t, ctx, "logging in as acme",
			chromedp.Click(chromedp.CSS("button.link")), // log out
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), acmeToken),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS(`section[data-tenant="acme"]`)))
		if n := eval[int](t, ctx, `document.querySelectorAll('section[data-tenant="globex"]').length`); n != 0 {
			t.Fatal("an acme token's overview shows globex")
		}
		run(t, ctx, "opening globex's jobs as acme",
			chromedp.Navigate(e.URL+"/tenants/globex/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#error-message")))
		if title := eval[string](t, ctx, `document.title`); !strings.HasPrefix(title, "Forbidden") {
			t.Fatalf("globex's jobs as acme: page %q, want Forbidden", title)
		}
		if body := eval[string](t, ctx, `document.body.innerText`); strings.Contains(body, "invoice") {
			t.Fatal("the forbidden page shows globex's job")
		}
		screenshot(t, ctx, backend, "forbidden")

		// With JavaScript off, the pages still read: the list is in the HTML.
		run(t, ctx, "reading the jobs with JavaScript off",
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
				return err
			}),
			chromedp.Navigate(e.URL+"/tenants/acme/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#jobs tbody tr[data-job]")))
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("#jobs tbody tr[data-job]")))
		if err != nil || len(nodes) != 6 {
			t.Fatalf("with JavaScript off: %d job rows (%v), want 6", len(nodes), err)
		}
		if attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS("#live-toggle"))); err != nil {
			t.Fatal(err)
		} else if _, disabled := attrs["disabled"]; !disabled {
			t.Fatal("the refresh box was enabled: the page's script ran with JavaScript off")
		}
		screenshot(t, ctx, backend, "jobs-no-js")
		// The charts are in the HTML too.
		run(t, ctx, "reading the charts with JavaScript off", chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#chart-counts")))
		if attrs, err := chromedp.Run(ctx, chromedp.Attributes(chromedp.CSS(`#chart-counts rect[data-bucket="2026-01-08T09:00:00Z"]`))); err != nil {
			t.Fatal(err)
		} else if attrs["data-enqueued"] != "6" {
			t.Fatalf("with JavaScript off, the 09:00 column says %s enqueued, want 6", attrs["data-enqueued"])
		}
		screenshot(t, ctx, backend, "overview-no-js")
	})
}
