package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// hlcFlags are the guide's SchedulerHlcOptions as flags, so the CLI can
// work in the same mode as the service it sits beside.
type hlcFlags struct {
	opts queue.Options
}

// resolve starts from the configured options and applies the flags the
// user actually set.
func (f *hlcFlags) resolve(g *globalFlags, fs *pflag.FlagSet) (queue.Options, error) {
	cfg, _, err := loadConfig(g, "", false)
	if err != nil {
		return queue.Options{}, err
	}
	o := cfg.Scheduler.Queue.Hlc.QueueOptions()
	if fs.Changed("enable-hlc-ordering") {
		o.EnableHlcOrdering = f.opts.EnableHlcOrdering
	}
	if fs.Changed("dual-write-mode") {
		o.DualWriteMode = f.opts.DualWriteMode
	}
	if fs.Changed("verify-on-dequeue") {
		o.VerifyOnDequeue = f.opts.VerifyOnDequeue
	}
	if fs.Changed("max-clock-drift-ms") {
		o.MaxClockDriftMs = f.opts.MaxClockDriftMs
	}
	return o, nil
}

func (f *hlcFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.opts.EnableHlcOrdering, "enable-hlc-ordering", false, "read in HLC order (the guide's EnableHlcOrdering; default from the configuration)")
	fs.BoolVar(&f.opts.DualWriteMode, "dual-write-mode", false, "write legacy table and HLC chain (the guide's DualWriteMode; default from the configuration)")
	fs.BoolVar(&f.opts.VerifyOnDequeue, "verify-on-dequeue", false, "verify each job's link before handing it out (the guide's VerifyOnDequeue; default from the configuration)")
	fs.IntVar(&f.opts.MaxClockDriftMs, "max-clock-drift-ms", queue.DefaultMaxClockDriftMs, "largest accepted lead of a chain head over this node's clock (the guide's MaxClockDriftMs; default from the configuration)")
}

// queueHandle bundles what a command that uses the queue opened.
type queueHandle struct {
	db store.DB
	q  *queue.Queue
}

func (h *queueHandle) Close() { _ = h.q.Close() }

// openQueue opens the database, migrates it and builds a queue in the
// mode of opts. CLI commands never reconcile sides on their own: moving
// jobs between the legacy table and the chain is what `ordo backfill` and
// `ordo rollback-drain` are for, and a one-off command run with default
// flags must not do it behind the operator's back.
func (g *globalFlags) openQueue(ctx context.Context, opts queue.Options) (*queueHandle, error) {
	node, err := g.nodeID()
	if err != nil {
		return nil, err
	}
	db, err := g.openMigrated(ctx)
	if err != nil {
		return nil, err
	}
	clock, err := hlc.New(ctx, hlc.Config{Node: node, Store: db.HLCState()})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: opts, SkipReconcile: true})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &queueHandle{db: db, q: q}, nil
}

func newEnqueueCommand(g *globalFlags) *cobra.Command {
	var hf hlcFlags
	var job queue.Job
	var payload string
	cmd := &cobra.Command{
		Use:   "enqueue",
		Short: "Enqueue one job and print its job id, t_hlc, link and whether it was deduplicated",
		Example: `  ordo enqueue --tenant acme --kind report.generate --payload '{"day":"2026-11-23"}' --dual-write-mode
  ordo enqueue --db postgres://ordo@localhost/ordo --tenant acme --partition eu --kind email.send \
      --payload '{"to":"a@example.com"}' --idempotency-key welcome-42 --enable-hlc-ordering`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts, err := hf.resolve(g, cmd.Flags())
			if err != nil {
				return err
			}
			h, err := g.openQueue(ctx, opts)
			if err != nil {
				return err
			}
			defer h.Close()
			job.Payload = []byte(payload)
			res, err := h.q.Enqueue(ctx, job)
			if err != nil {
				return err
			}
			out := map[string]any{"job_id": res.JobID, "deduplicated": res.Deduplicated, "t_hlc": nil, "link": nil, "mode": h.q.Mode().String()}
			if res.THLC != "" {
				out["t_hlc"], out["link"] = res.THLC, res.Link.String()
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	hf.register(cmd.Flags())
	cmd.Flags().StringVar(&job.TenantID, "tenant", "", "tenant id (required)")
	cmd.Flags().StringVar(&job.PartitionKey, "partition", "", "partition key (default: the default partition)")
	cmd.Flags().StringVar(&job.Kind, "kind", "", "job kind (required)")
	cmd.Flags().StringVar(&payload, "payload", "{}", "JSON payload")
	cmd.Flags().StringVar(&job.IdempotencyKey, "idempotency-key", "", "idempotency key (default: the payload decides the job id)")
	cmd.Flags().IntVar(&job.Priority, "priority", 0, "priority (legacy ordering only)")
	cmd.Flags().IntVar(&job.MaxAttempts, "max-attempts", 0, "maximum attempts (default 25)")
	_ = cmd.MarkFlagRequired("tenant")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

func newBackfillCommand(g *globalFlags) *cobra.Command {
	var tenant string
	var all bool
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Append legacy jobs that are still pending, scheduled or running to their tenants' HLC chains (guide phase 2)",
		Long: `Appends every legacy job in pending, scheduled or running that is not yet on the HLC side to its
tenant's chain, fully chained, with fresh t_hlc timestamps and the original created_at kept. It works in
batches, can be interrupted and run again, and running it twice adds nothing.`,
		Example: `  ordo backfill --db postgres://ordo@localhost/ordo --all
  ordo backfill --tenant acme`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (tenant != "") {
				return fmt.Errorf("give exactly one of --tenant T or --all")
			}
			ctx := cmd.Context()
			h, err := g.openQueue(ctx, queue.DefaultOptions())
			if err != nil {
				return err
			}
			defer h.Close()
			n, err := h.q.Backfill(ctx, tenant)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"backfilled": n})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "backfill this tenant only")
	cmd.Flags().BoolVar(&all, "all", false, "backfill every tenant")
	return cmd
}

func newRollbackDrainCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback-drain",
		Short: "Copy unfinished jobs that exist only on the HLC side into the legacy table, before rolling back to legacy reads",
		Long: `The guide's rollback turns HLC ordering and dual-write off. Jobs enqueued while dual-write was off
exist only on the HLC side; this copies the unfinished ones (with their status, attempts and lease) into the
legacy table so that legacy reads pick them up. Running it twice adds nothing.`,
		Example: `  ordo rollback-drain --db postgres://ordo@localhost/ordo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			h, err := g.openQueue(ctx, queue.DefaultOptions())
			if err != nil {
				return err
			}
			defer h.Close()
			n, err := h.q.RollbackDrain(ctx)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"drained": n})
		},
	}
}
