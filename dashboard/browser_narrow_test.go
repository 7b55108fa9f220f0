package dashboard_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Issue 16: every page reads on a 360 px wide phone without widening the
// page (wide tables scroll in their own box), and every time is in UTC
// with the reader's local time on hover.
func TestBrowserNarrowScreenAndTimes(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		backend := "sqlite"
		if !strings.HasPrefix(dbURL, "sqlite:") {
			backend = "postgres"
		}
		e := newEnv(t, dbURL)
		id := e.enqueue("acme", acmeToken, map[string]any{"kind": "report.generate.quarterly-summary",
			"payload": map[string]any{"to": "someone-with-a-long-address@example.com"}})
		ctx := newBrowser(t)
		run(t, ctx, "logging in on a phone-sized screen",
			chromedp.EmulateViewport(360, 740),
			chromedp.Navigate(e.URL+"/login"),
			chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), adminToken),
			chromedp.Submit(chromedp.CSS("#token")),
			chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)), // the login page has none
		)
		for _, page := range []struct{ name, path string }{
			{"overview", "/"},
			{"jobs", "/tenants/acme/jobs"},
			{"job", "/tenants/acme/jobs/" + id},
			{"chain", "/tenants/acme/chain"},
			{"queues", "/tenants/acme/queues"},
			{"nodes", "/nodes"},
			{"overview-day", "/?window=day"},
			{"periodic", "/periodic"},
		} {
			run(t, ctx, "opening "+page.path, chromedp.Navigate(e.URL+page.path), chromedp.WaitVisible(chromedp.CSS("footer time[data-utc]")))
			if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 360 {
				t.Errorf("%s is %d px wide on a 360 px screen", page.path, w)
			}
			// The footer's time: UTC text, the local time as its title.
			text := eval[string](t, ctx, `document.querySelector("footer time[data-utc]").textContent`)
			title := eval[string](t, ctx, `document.querySelector("footer time[data-utc]").title`)
			if !strings.HasSuffix(text, "Z") || !strings.HasPrefix(title, "Local time: ") {
				t.Errorf("%s: time %q titled %q; want UTC text and the local time on hover", page.path, text, title)
			}
			screenshot(t, ctx, backend, "360px-"+page.name)
		}
	})
}
