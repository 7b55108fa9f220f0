package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/hlc"
)

func newClockCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "clock",
		Short: "Show this node's hybrid logical clock: persisted bound, a fresh timestamp and drift",
		Long: `Loads this node's HLC state from the database, issues one timestamp and prints it
as JSON with the wall clock, the persisted upper bound and how far the HLC runs ahead
of the wall clock.`,
		Example: `  ordo clock --node scheduler-east-1
  ordo clock --db postgres://ordo@localhost/ordo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			node, err := g.nodeID()
			if err != nil {
				return err
			}
			db, err := g.openMigrated(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			before, err := db.HLCState().Load(ctx, node)
			if err != nil {
				return err
			}
			clock, err := hlc.New(ctx, hlc.Config{Node: node, Store: db.HLCState()})
			if err != nil {
				return err
			}
			ts, err := clock.Now()
			if err != nil {
				return err
			}
			wall := clock.Wall()
			after, err := db.HLCState().Load(ctx, node)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{
				"node_id":             node,
				"timestamp":           ts.String(),
				"wall_clock":          time.UnixMilli(wall).UTC().Format(time.RFC3339Nano),
				"ahead_of_wall_ms":    ts.Physical - wall,
				"stored_bound_before": before,
				"stored_bound_after":  after,
				"max_drift_ms":        clock.MaxDrift().Milliseconds(),
			})
		},
	}
}
