package dashboard_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserSearchAndBulk drives issue 16's part of the jobs page in a
// real chromium, as a tenant token: the kind picker, a payload search
// with % and _, a job id typed in the search box, then a bulk retry,
// cancel and delete over a mixed selection (select all, single boxes),
// each through its confirmation page to the result line; another
// tenant's bulk page is forbidden; and with JavaScript off, "select all"
// is a link and the whole bulk action still works.
//
// Every wait is on the page the step leads to (an element or attribute
// only that page has), then on its footer, so the page is parsed and laid
// out before it is read or photographed; the live refresh is switched off on each
// list page first, so it cannot swap the list between two clicks.
func TestBrowserSearchAndBulk(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		backend := "sqlite"
		if !strings.HasPrefix(dbURL, "sqlite:") {
			backend = "postgres"
		}
		e := newEnv(t, dbURL)
		j := newBulkJobs(e)
		sale := e.enqueue("acme", acmeToken, map[string]any{"kind": "promo", "payload": map[string]any{"note": "50%_off"}})
		e.enqueue("acme", acmeToken, map[string]any{"kind": "promo", "payload": map[string]any{"note": "5000off"}})
		theirs := e.enqueue("globex", e.GlobexToken, map[string]any{"kind": "invoice", "payload": map[string]any{"note": "50%_off"}})
		ctx := newBrowser(t)

		// listPage opens a list page and switches its live refresh off.
		listPage := func(what, path string, ready string) {
			t.Helper()
			run(t, ctx, what,
				chromedp.Navigate(e.URL+path),
				chromedp.WaitVisible(chromedp.CSS(ready)),
				chromedp.WaitEnabled(chromedp.CSS("#live-toggle")),
				chromedp.Click(chromedp.CSS("#live-toggle")),
				chromedp.WaitEnabled(chromedp.CSS("#select-all")))
			if eval[bool](t, ctx, `document.getElementById("live-toggle").checked`) {
				t.Fatal("the live refresh is still on")
			}
		}
		rows := func() []string {
			t.Helper()
			return eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#jobs tbody tr[data-job]"), r => r.dataset.job)`)
		}
		flash := func() string {
			t.Helper()
			return eval[string](t, ctx, `document.querySelector("p.flash").textContent`)
		}

		run(t, ctx, "logging in as acme",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), acmeToken),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS("#jobs")))

		// The kind picker lists acme's kinds, not globex's.
		listPage("opening the jobs", "/tenants/acme/jobs", "#jobs")
		kinds := eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#f-kind option"), o => o.value)`)
		if !slices.Equal(kinds, []string{"", "email", "promo", "report"}) {
			t.Fatalf("the kind picker offers %q", kinds)
		}
		run(t, ctx, "picking a kind",
			chromedp.SetValue(chromedp.CSS("#f-kind"), "promo"),
			chromedp.Submit(chromedp.CSS("#f-kind")),
			chromedp.WaitReady(chromedp.CSS(`#f-kind option[value="promo"][selected]`)),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if got := rows(); len(got) != 2 {
			t.Fatalf("kind promo lists %v, want the 2 promo jobs", got)
		}
		screenshot(t, ctx, backend, "jobs-kind")

		// A payload search: % and _ are the characters themselves.
		run(t, ctx, "searching the payloads",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#f-q")),
			chromedp.SendKeys(chromedp.CSS("#f-q"), "50%_off"),
			chromedp.Submit(chromedp.CSS("#f-q")),
			chromedp.WaitVisible(chromedp.CSS(`#f-q[value="50%_off"]`)),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if got := rows(); !slices.Equal(got, []string{sale}) {
			t.Fatalf("searching 50%%_off lists %v, want only %s", got, sale)
		}
		if caption := eval[string](t, ctx, `document.querySelector("#jobs caption").textContent`); !strings.Contains(caption, "searched the last 10,000 jobs") {
			t.Fatalf("the search does not say how far back it looked: %q", caption)
		}
		screenshot(t, ctx, backend, "jobs-search")

		// A job id in the search box opens the job.
		run(t, ctx, "searching a job id",
			chromedp.Navigate(e.URL+"/tenants/acme/jobs"),
			chromedp.WaitVisible(chromedp.CSS("#f-q")),
			chromedp.SendKeys(chromedp.CSS("#f-q"), " "+j.failed+" "),
			chromedp.Submit(chromedp.CSS("#f-q")),
			chromedp.WaitVisible(chromedp.CSS("#job-state")))
		if loc := eval[string](t, ctx, `location.pathname`); loc != "/tenants/acme/jobs/"+j.failed {
			t.Fatalf("the job id search led to %s", loc)
		}
		// Its page shows the attempt that failed: which, its error, when, where.
		attempts := eval[[][]string](t, ctx, `Array.from(document.querySelectorAll("#attempt-errors tbody tr"),
			r => Array.from(r.cells, c => c.textContent))`)
		if len(attempts) != 1 || attempts[0][1] != "1" || attempts[0][2] != "disk full" || !strings.HasSuffix(attempts[0][0], "Z") || attempts[0][3] == "" {
			t.Fatalf("the failed job's attempt history reads %q, want attempt 1, disk full, a UTC time and the worker", attempts)
		}
		screenshot(t, ctx, backend, "job-attempts")

		// Bulk retry: select all on the page (8 jobs), one confirmation.
		listPage("opening the jobs for a bulk retry", "/tenants/acme/jobs", "#jobs")
		run(t, ctx, "selecting all and asking to retry",
			chromedp.Click(chromedp.CSS("#select-all")),
			chromedp.Click(chromedp.CSS("#bulk-retry")),
			chromedp.WaitVisible(chromedp.CSS("#bulk-plan")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if summary := eval[string](t, ctx, `document.getElementById("bulk-summary").textContent`); summary != "3 will be retried, 5 skipped: 3 pending, 1 running, 1 succeeded." {
			t.Fatalf("retry confirmation: %q", summary)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('#bulk-plan tr[data-applies="false"]').length`); n != 5 {
			t.Fatalf("%d rows say skipped, want 5", n)
		}
		screenshot(t, ctx, backend, "bulk-confirm-retry")
		run(t, ctx, "confirming the retry",
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if f := flash(); f != "3 retried, 5 skipped: 3 pending, 1 running, 1 succeeded" {
			t.Fatalf("retry result: %q", f)
		}
		screenshot(t, ctx, backend, "bulk-retried")

		// Bulk cancel: three boxes ticked one by one.
		listPage("opening the jobs for a bulk cancel", "/tenants/acme/jobs", "#jobs")
		run(t, ctx, "selecting three jobs and asking to cancel",
			chromedp.Click(chromedp.CSS(`input[name="job"][value="`+j.failed+`"]`)),
			chromedp.Click(chromedp.CSS(`input[name="job"][value="`+j.running+`"]`)),
			chromedp.Click(chromedp.CSS(`input[name="job"][value="`+j.succeeded+`"]`)),
			chromedp.Click(chromedp.CSS("#bulk-cancel")),
			chromedp.WaitVisible(chromedp.CSS("#bulk-plan")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if summary := eval[string](t, ctx, `document.getElementById("bulk-summary").textContent`); summary != "2 will be cancelled, 1 skipped: succeeded." {
			t.Fatalf("cancel confirmation: %q", summary)
		}
		run(t, ctx, "confirming the cancel",
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if f := flash(); f != "2 cancelled, 1 skipped: succeeded" {
			t.Fatalf("cancel result: %q", f)
		}

		// Bulk delete of everything: the finished jobs go, the rest stay.
		listPage("opening the jobs for a bulk delete", "/tenants/acme/jobs", "#jobs")
		run(t, ctx, "selecting all and asking to delete",
			chromedp.Click(chromedp.CSS("#select-all")),
			chromedp.Click(chromedp.CSS("#bulk-delete")),
			chromedp.WaitVisible(chromedp.CSS("#bulk-plan")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		screenshot(t, ctx, backend, "bulk-confirm-delete")
		run(t, ctx, "confirming the delete",
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if f := flash(); f != "3 deleted, 5 skipped: pending" {
			t.Fatalf("delete result: %q", f)
		}
		if got := rows(); len(got) != 5 {
			t.Fatalf("after the delete the list shows %d jobs, want 5", len(got))
		}
		for _, id := range []string{j.failed, j.running, j.succeeded} {
			if st := e.apiStatus(id); st != "pruned" {
				t.Fatalf("%s is %s after the delete, want pruned", id, st)
			}
		}
		screenshot(t, ctx, backend, "bulk-deleted")

		// Another tenant's bulk page is forbidden to acme.
		run(t, ctx, "opening globex's bulk page as acme",
			chromedp.Navigate(e.URL+"/tenants/globex/jobs/bulk?"+selection("cancel", "", theirs).Encode()),
			chromedp.WaitVisible(chromedp.CSS("#error-message")))
		if title := eval[string](t, ctx, `document.title`); !strings.HasPrefix(title, "Forbidden") {
			t.Fatalf("globex's bulk page as acme: %q", title)
		}
		if st := e.status(theirs); st != "pending" {
			t.Fatalf("globex's job is %s", st)
		}

		// Without JavaScript: "select all" is a link, the rest plain forms.
		run(t, ctx, "selecting all with JavaScript off",
			chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
				return err
			}),
			chromedp.Navigate(e.URL+"/tenants/acme/jobs?"+url.Values{"state": {"pending"}}.Encode()),
			chromedp.WaitVisible(chromedp.CSS(`a[href*="select=all"]`)),
			chromedp.Click(chromedp.CSS(`a[href*="select=all"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#select-all[checked]`)),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if n := eval[int](t, ctx, `document.querySelectorAll('#jobs input[name="job"]:checked').length`); n != 5 {
			t.Fatalf("select all without JavaScript ticked %d boxes, want 5", n)
		}
		screenshot(t, ctx, backend, "bulk-no-js")
		run(t, ctx, "cancelling all with JavaScript off",
			chromedp.Click(chromedp.CSS("#bulk-cancel")),
			chromedp.WaitVisible(chromedp.CSS("#bulk-plan")),
			chromedp.Click(chromedp.CSS("#confirm")),
			chromedp.WaitVisible(chromedp.CSS("p.flash")),
			chromedp.WaitVisible(chromedp.CSS("footer")))
		if f := flash(); f != "5 cancelled" {
			t.Fatalf("cancel without JavaScript: %q", f)
		}
		// Back where it was: the pending jobs, now none.
		if loc := eval[string](t, ctx, `location.search`); !strings.Contains(loc, "state=pending") || len(rows()) != 0 {
			t.Fatalf("after the cancel: %s with %d jobs", loc, len(rows()))
		}
	})
}
