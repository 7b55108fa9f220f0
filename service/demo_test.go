package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/worker"
)

func TestDemoTrickleStopsWithTheServer(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		events, wc := workerEvents(func(c *worker.Config) { c.PollInterval = 5 * time.Millisecond })
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Worker.Enabled = true
			c.Ordo.Demo = config.Demo{Enabled: true, Rate: 500, Tenants: []string{"demo-a", "demo-b"}}
		}, service.Options{WorkerConfig: wc})
		if err := e.svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		perTenant := func() map[string]int {
			out := map[string]int{}
			rows, err := e.raw.Query("SELECT tenant_id, count(*) FROM " + e.prefix + "scheduler_log GROUP BY tenant_id")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var tenant string
				var n int
				if err := rows.Scan(&tenant, &n); err != nil {
					t.Fatal(err)
				}
				out[tenant] = n
			}
			return out
		}
		// The built-in noop worker runs the demo's jobs: five have run for
		// each tenant, so at least five were enqueued for each.
		ran := map[string]int{}
		events.Await(t, "5 demo jobs of each tenant to succeed", func(ev worker.Event) bool {
			if ev.Type == worker.EventJobSucceeded && ev.Lease.Kind == service.KindNoop {
				ran[ev.Lease.TenantID]++
			}
			return ran["demo-a"] >= 5 && ran["demo-b"] >= 5
		})
		if c := perTenant(); c["demo-a"] < 5 || c["demo-b"] < 5 {
			t.Fatalf("demo jobs logged per tenant: %v, want 5 or more each", c)
		}
		var n int
		if err := e.raw.QueryRow("SELECT count(*) FROM " + e.prefix + "job_state WHERE status = 'succeeded'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("no demo job succeeded in job_state")
		}
		if err := e.svc.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		stopped := perTenant()
		// Shutdown returned after the trickle's goroutine ended: nothing
		// more is enqueued. (Reading twice is the whole check: no sleep
		// could make it stronger.)
		if again := perTenant(); again["demo-a"] != stopped["demo-a"] || again["demo-b"] != stopped["demo-b"] {
			t.Fatalf("jobs were enqueued after shutdown: %v then %v", stopped, again)
		}
		if len(stopped) != 2 {
			t.Fatalf("tenants %v", stopped)
		}
	})
}
