package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/store"
)

// TestEnsureLogPartitionsNow: on PostgreSQL the service makes the
// scheduler_log partitions of the coming periods
// (Ordo:Database:LogPartitionPeriod), once; while another node holds the
// duty it makes none; with the period 0 it makes none. On SQLite, which
// has no partitions, it does nothing.
func TestEnsureLogPartitionsNow(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		postgres := strings.HasPrefix(dbURL, "postgres")
		// The first partition ends at a midnight after the migration ran
		// (an hour after it, at least): the wall clock starts at the
		// migration's time.
		start := time.Now().UTC()
		wall := hlc.NewManualClock(start.UnixMilli())
		e := newEnv(t, dbURL, func(c *config.Config) { c.Ordo.Database.LogPartitionPeriod = 24 * time.Hour },
			service.Options{Wall: wall})
		res, err := e.Svc.EnsureLogPartitionsNow(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !postgres {
			if len(res.Created) != 0 || len(res.LeftToDefault) != 0 {
				t.Fatalf("on SQLite EnsureLogPartitionsNow = %+v; want nothing done", res)
			}
			return
		}
		// Up to the first partition's end (1 to 25 hours on) is the first
		// partition's; the days from there to three days on get one each.
		if len(res.Created) < 2 || len(res.Created) > 3 || len(res.LeftToDefault) != 0 {
			t.Fatalf("EnsureLogPartitionsNow = %+v; want 2 or 3 daily partitions made", res)
		}
		for _, name := range res.Created {
			if _, err := time.Parse("20060102", strings.TrimPrefix(name, "scheduler_log_p")); err != nil {
				t.Errorf("partition %q is not named by its day", name)
			}
		}
		if res, err := e.Svc.EnsureLogPartitionsNow(ctx); err != nil || len(res.Created) != 0 {
			t.Fatalf("EnsureLogPartitionsNow again = %+v, %v; want nothing made", res, err)
		}

		// Another node holds the duty, a week later: nothing is made.
		db, err := store.Open(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		later := start.Add(7 * 24 * time.Hour)
		wall.Set(later.UnixMilli())
		if led, err := db.TryLead(ctx, driver.LeadParams{Name: service.LogPartitionsLeadershipName, Holder: "other-node",
			Until: later.Add(time.Hour), Now: later}); err != nil || !led {
			t.Fatalf("the other node's TryLead = %v, %v", led, err)
		}
		if res, err := e.Svc.EnsureLogPartitionsNow(ctx); err != nil || len(res.Created) != 0 {
			t.Fatalf("EnsureLogPartitionsNow while another node leads = %+v, %v; want nothing made", res, err)
		}
		// Once its lease lapses, this node makes the week's partitions.
		wall.Set(later.Add(2 * time.Hour).UnixMilli())
		if res, err := e.Svc.EnsureLogPartitionsNow(ctx); err != nil || len(res.Created) == 0 {
			t.Fatalf("EnsureLogPartitionsNow after the lease lapsed = %+v, %v; want partitions made", res, err)
		}
	})
}
