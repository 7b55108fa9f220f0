package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// The demo walks the migration guide's phases on a real queue: jobs
// enqueued in legacy mode, dual-write, backfill, HLC reads from two nodes
// whose clocks disagree, HLC only, and the rollback, and shows that every
// job runs exactly once and in which order.
func newDemoCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Walk the HLC migration guide's phases on a real queue (embedded SQLite by default)",
		Long: `Runs the migration guide end to end: legacy ordering, dual-write (phase 1), backfill (phase 2), HLC
reads with two nodes whose wall clocks are 20 seconds apart (phase 3), dual-write off (phase 4) and the
rollback, printing the order in which jobs are handed out and checking that every job it enqueued ran
exactly once.

It runs on a fresh SQLite database of its own, removed at the end, whatever the configuration or
$ORDO_DATABASE_URL say, so it never touches the database of ` + "`ordo serve`" + `. Only --db runs it on
another database: it then enqueues, backfills and hands out jobs of its own tenants only (demo-acme and
demo-globex), but its rollback step, like the guide's, copies every HLC-only job of the database to the
legacy table.`,
		Example: "  ordo demo\n  ordo demo --db sqlite:/tmp/demo.db\n  ordo demo --db postgres://ordo@localhost/ordo_demo",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), g, cmd.OutOrStdout())
		},
	}
}

type demoNode struct {
	q    *queue.Queue
	name string
}

// The demo's tenants: names of its own, so that on a shared database
// (--db) it hands out no one else's jobs.
const (
	demoTenantA = "demo-acme"
	demoTenantB = "demo-globex"
)

func runDemo(ctx context.Context, g *globalFlags, out io.Writer) error {
	url := g.db
	if url == "" {
		dir, err := os.MkdirTemp("", "ordo-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		url = "sqlite:" + filepath.Join(dir, "demo.db")
		fmt.Fprintf(out, "a fresh database of its own (%s, removed at the end; --db names another)\n", url)
	}
	db, err := store.OpenMigrated(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(out, "database %s, schema migrated\n", config.RedactURL(url))

	// Two nodes on one database; west's wall clock runs 20 s behind east's.
	var nodes []demoNode
	for _, n := range []struct {
		name string
		skew time.Duration
	}{{"scheduler-east-1", 0}, {"scheduler-west-1", -20 * time.Second}} {
		skew := n.skew
		// Each node gets its own handle, as separate processes would.
		be, err := store.Open(ctx, url)
		if err != nil {
			return err
		}
		clock, err := hlc.New(ctx, hlc.Config{Node: n.name, Wall: skewedClock{skew}, Store: be.HLCState()})
		if err != nil {
			_ = be.Close()
			return err
		}
		q, err := queue.New(ctx, queue.Config{Backend: be, Clock: clock, SkipReconcile: true,
			Now: func() time.Time { return time.Now().Add(skew) }})
		if err != nil {
			return err
		}
		defer q.Close()
		nodes = append(nodes, demoNode{q, n.name})
	}
	east, west := nodes[0], nodes[1]

	// Payloads carry the run's start so that running the demo again on the
	// same database enqueues new jobs instead of deduplicating old ones.
	run := time.Now().UnixNano()
	enqueued := map[string]bool{}
	ran := map[string]int{}
	enqueue := func(n demoNode, tenant, kind string, priority int, payload string) error {
		payload = fmt.Sprintf(`{"run":%d,"job":%s}`, run, payload)
		res, err := n.q.Enqueue(ctx, queue.Job{TenantID: tenant, Kind: kind, Priority: priority, Payload: []byte(payload)})
		if err != nil {
			return err
		}
		if !res.Deduplicated {
			enqueued[res.JobID.String()] = true
		}
		return nil
	}
	// work hands out and completes up to max jobs (-1: all) of tenant.
	work := func(n demoNode, tenant string, max int) error {
		var table bytes.Buffer // printed only when a job was handed out
		w := tabwriter.NewWriter(&table, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  \tWORKER\tTENANT\tKIND\tPRIORITY\tT_HLC")
		i := 0
		for ; max < 0 || i < max; i++ {
			leases, err := n.q.Dequeue(ctx, queue.DequeueOptions{Limit: 1, TenantID: tenant})
			if err != nil {
				return err
			}
			if len(leases) == 0 {
				break
			}
			l := leases[0]
			thlc := l.THLC
			if thlc == "" {
				thlc = "(legacy only)"
			}
			fmt.Fprintf(w, "  \t%s\t%s\t%s\t%d\t%s\n", n.name, l.TenantID, l.Kind, l.Priority, thlc)
			if err := n.q.Complete(ctx, l); err != nil {
				return err
			}
			ran[l.JobID.String()]++
		}
		if err := w.Flush(); err != nil || i == 0 {
			return err
		}
		_, err := out.Write(table.Bytes())
		return err
	}
	phase := func(title string, o queue.Options) error {
		fmt.Fprintf(out, "\n== %s  (EnableHlcOrdering=%t, DualWriteMode=%t)\n", title, o.EnableHlcOrdering, o.DualWriteMode)
		for _, n := range nodes {
			if err := n.q.SetOptions(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}

	if err := phase("legacy ordering: priority, then age", queue.Options{}); err != nil {
		return err
	}
	for i, p := range []int{1, 5, 3} {
		if err := enqueue(east, demoTenantA, "invoice.render", p, fmt.Sprintf(`{"invoice":%d}`, 100+i)); err != nil {
			return err
		}
	}
	if err := work(east, demoTenantA, 1); err != nil {
		return err
	}

	if err := phase("phase 1: dual-write, legacy reads", queue.Options{DualWriteMode: true}); err != nil {
		return err
	}
	for i := range 2 {
		if err := enqueue(west, demoTenantB, "report.generate", 0, fmt.Sprintf(`{"report":%d}`, i)); err != nil {
			return err
		}
	}

	fmt.Fprintln(out, "\n== phase 2: backfill")
	n := 0
	for _, tenant := range []string{demoTenantA, demoTenantB} {
		m, err := east.q.Backfill(ctx, tenant)
		if err != nil {
			return err
		}
		n += m
	}
	fmt.Fprintf(out, "  %d legacy jobs appended to their chains\n", n)

	if err := phase("phase 3: HLC reads, dual-write on", queue.Options{EnableHlcOrdering: true, DualWriteMode: true}); err != nil {
		return err
	}
	// West's clock is 20 s behind, yet its jobs join the chain after east's:
	// every append merges the chain head's timestamp into the node's clock.
	for i := range 2 {
		if err := enqueue(east, demoTenantA, "email.send", 9, fmt.Sprintf(`{"mail":%d}`, i)); err != nil {
			return err
		}
		if err := enqueue(west, demoTenantA, "email.send", 0, fmt.Sprintf(`{"mail":"w%d"}`, i)); err != nil {
			return err
		}
	}
	// Handed out in t_hlc order, whichever node and priority. (East works:
	// run_at is wall-clock time, and west's wall clock would see east's
	// jobs as 20 s in the future.)
	if err := work(east, demoTenantA, -1); err != nil {
		return err
	}

	if err := phase("phase 4: HLC only, dual-write off", queue.Options{EnableHlcOrdering: true}); err != nil {
		return err
	}
	for i := range 2 {
		if err := enqueue(west, demoTenantB, "report.generate", 0, fmt.Sprintf(`{"report":"late-%d"}`, i)); err != nil {
			return err
		}
	}
	if err := enqueue(east, demoTenantB, "report.generate", 0, `{"report":"late-0"}`); err != nil { // a duplicate
		return err
	}

	fmt.Fprintln(out, "\n== rollback: drain HLC-only jobs, then legacy reads")
	n, err = east.q.RollbackDrain(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %d HLC-only jobs copied to the legacy table\n", n)
	if err := phase("rolled back", queue.Options{}); err != nil {
		return err
	}
	for _, tenant := range []string{demoTenantA, demoTenantB} {
		if err := work(east, tenant, -1); err != nil {
			return err
		}
	}

	// Counted over the jobs this run enqueued, so that the line adds up.
	never, twice := 0, 0
	for id := range enqueued {
		switch {
		case ran[id] == 0:
			never++
		case ran[id] > 1:
			twice++
		}
	}
	fmt.Fprintf(out, "\n%d jobs enqueued (one duplicate refused): %d ran once, %d never, %d more than once\n",
		len(enqueued), len(enqueued)-never-twice, never, twice)
	if never+twice != 0 {
		return fmt.Errorf("demo: %d of %d jobs did not run exactly once", never+twice, len(enqueued))
	}
	return nil
}

// skewedClock is the system clock moved by a fixed offset, to show two
// nodes whose clocks disagree.
type skewedClock struct{ skew time.Duration }

func (c skewedClock) UnixMilli() int64 { return time.Now().Add(c.skew).UnixMilli() }
