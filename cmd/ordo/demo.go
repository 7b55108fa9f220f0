package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// The demo shows the two ideas ordo is built on, before the queue exists:
// three nodes append jobs to one tenant's chain, each append merging the
// chain head's timestamp into the node's clock, so chain order equals HLC
// order; then a verifier recomputes every link and catches a tampered
// payload.
func newDemoCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "demo",
		Short:   "Demonstrate HLC ordering and chain linking on the embedded default database",
		Example: "  ordo demo\n  ordo demo --db sqlite:/tmp/demo.db",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			db, err := g.openMigrated(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			fmt.Fprintf(out, "database %s migrated\n\n", g.databaseURL())

			var clocks []*hlc.Clock
			for _, node := range []string{"scheduler-east-1", "scheduler-west-1", "scheduler-north-1"} {
				c, err := hlc.New(ctx, hlc.Config{Node: node, Store: db.HLCState()})
				if err != nil {
					return err
				}
				clocks = append(clocks, c)
			}

			type entry struct {
				chain.Entry
				payload string
			}
			var entries []entry
			var head chain.Hash
			var headTS hlc.Timestamp
			for i := range 6 {
				clock := clocks[i%len(clocks)]
				payload := fmt.Sprintf(`{"report":"daily","region":%d,"attempt":1}`, i)
				ts, err := clock.Now()
				if err != nil {
					return err
				}
				if !headTS.IsZero() {
					// Appending merges the head's time: the new entry sorts
					// after the head whatever this node's wall clock says.
					if ts, err = clock.Receive(headTS); err != nil {
						return err
					}
				}
				hash, err := chain.PayloadHash([]byte(payload))
				if err != nil {
					return err
				}
				id, err := chain.JobID("acme", "", "report.generate", "", hash)
				if err != nil {
					return err
				}
				link, err := chain.Link(head, id, ts.String(), hash)
				if err != nil {
					return err
				}
				entries = append(entries, entry{chain.Entry{
					TenantID: "acme", Seq: int64(i), THLC: ts.String(), JobID: id,
					PayloadHash: hash, PrevLink: head, Link: link,
				}, payload})
				head, headTS = link, ts
			}

			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tT_HLC\tJOB_ID\tPREV_LINK\tLINK")
			for _, e := range entries {
				prev := "(genesis)"
				if !e.PrevLink.IsZero() {
					prev = e.PrevLink.String()[:12] + "…"
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s…\n", e.Seq, e.THLC, short(e.JobID), prev, e.Link.String()[:12])
			}
			if err := w.Flush(); err != nil {
				return err
			}

			check := func(label string) error {
				var prev chain.Hash
				for _, e := range entries {
					hash, err := chain.PayloadHash([]byte(e.payload))
					if err != nil {
						return err
					}
					link, err := chain.Link(prev, e.JobID, e.THLC, hash)
					if err != nil {
						return err
					}
					if hash != e.PayloadHash || link != e.Link {
						fmt.Fprintf(out, "%s: entry %d does not verify: its payload no longer hashes to the chained value\n", label, e.Seq)
						return nil
					}
					prev = link
				}
				fmt.Fprintf(out, "%s: all %d links verify\n", label, len(entries))
				return nil
			}
			fmt.Fprintln(out)
			if err := check("verify"); err != nil {
				return err
			}
			entries[3].payload = `{"report":"daily","region":3,"attempt":2}`
			fmt.Fprintln(out, "tampering: changed the payload of entry 3")
			return check("verify")
		},
	}
}

func short(id uuid.UUID) string { return id.String()[:8] + "…" }
