package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

func newJobsCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List a tenant's jobs in HLC order, show one job with its chain entry, cancel or retry jobs, export and import bundles",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newJobsListCommand(g), newJobsShowCommand(g), newJobsCancelCommand(g), newJobsRetryCommand(g),
		newJobsExportCommand(g), newJobsImportCommand(g))
	return cmd
}

func newJobsListCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	var tenant, kind, partition, cursor string
	var states []string
	var limit int
	var all, payload, newest bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a tenant's jobs: HLC-side jobs in t_hlc order, then legacy-only jobs in created_at order",
		Long: `Prints one page of a tenant's jobs as JSON, with the cursor of the next page (pass it to --cursor), or every
page with --all. Jobs on the HLC side come first, in t_hlc order, each with its chain entry; jobs that exist only
in the legacy table (enqueued in legacy mode) follow, in created_at order.

` + readOnlyHelp,
		Example: `  ordo jobs list --tenant acme
  ordo jobs list --tenant acme --state pending,running --kind email.send --limit 20
  ordo jobs list --tenant acme --partition eu --all --payload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, _, err := loadConfig(g, cf.path, false)
			if err != nil {
				return err
			}
			p := driver.ListParams{TenantID: tenant, Kind: kind, Cursor: cursor, Limit: limit, WithPayload: payload, Newest: newest}
			for _, s := range states {
				for _, st := range strings.Split(s, ",") {
					p.Statuses = append(p.Statuses, queue.Status(strings.TrimSpace(st)))
				}
			}
			if cmd.Flags().Changed("partition") {
				p.Partition = &partition
			}
			if err := p.Validate(); err != nil {
				return err
			}
			db, err := openReadOnly(ctx, cfg.Ordo.Database.Url)
			if err != nil {
				return err
			}
			defer db.Close()
			var views []any
			next := ""
			for {
				jobs, n, err := db.ListJobs(ctx, p)
				if err != nil {
					return err
				}
				for _, j := range jobs {
					views = append(views, service.JobView(j))
				}
				next = n
				if !all || next == "" {
					break
				}
				p.Cursor = next
			}
			if views == nil {
				views = []any{}
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"jobs": views, "next_cursor": next})
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant id (required)")
	cmd.Flags().StringSliceVar(&states, "state", nil, "only jobs in these states (pending, scheduled, running, succeeded, failed, cancelled, chain_violation)")
	cmd.Flags().StringVar(&kind, "kind", "", "only jobs of this kind")
	cmd.Flags().StringVar(&partition, "partition", "", `only jobs of this partition (--partition "" for the default one)`)
	cmd.Flags().StringVar(&cursor, "cursor", "", "start after this cursor (a previous page's next_cursor, or a t_hlc)")
	cmd.Flags().IntVar(&limit, "limit", driver.DefaultListLimit, fmt.Sprintf("page size, 1..%d", driver.MaxListLimit))
	cmd.Flags().BoolVar(&all, "all", false, "print every page")
	cmd.Flags().BoolVar(&payload, "payload", false, "include the payloads")
	cmd.Flags().BoolVar(&newest, "newest", false, "newest first: HLC-side jobs by t_hlc descending, then legacy-only jobs by created_at descending")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

func newJobsShowCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	var tenant string
	cmd := &cobra.Command{
		Use:   "show JOB_ID",
		Short: "Show one job, merged from both sides, with its payload, its chain entry and its attempt errors",
		Long: `Prints one job as JSON, merged from both sides, with its payload, its chain entry and the errors of its
last 20 failed attempts (attempt_errors, oldest first). Exit status: 0 when
found, 1 when there is no such job (in --tenant), 2 on error.

` + readOnlyHelp,
		Example: `  ordo jobs show 6f1c2d8e-3b0a-5c7d-9e1f-2a3b4c5d6e7f
  ordo jobs show 6f1c2d8e-3b0a-5c7d-9e1f-2a3b4c5d6e7f --tenant acme`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id, err := uuid.Parse(args[0])
			if err != nil {
				return fmt.Errorf("job id %q: want a UUID", args[0])
			}
			cfg, _, err := loadConfig(g, cf.path, false)
			if err != nil {
				return err
			}
			db, err := openReadOnly(ctx, cfg.Ordo.Database.Url)
			if err != nil {
				return err
			}
			defer db.Close()
			info, err := db.GetJob(ctx, driver.JobRef{TenantID: tenant, JobID: id})
			if errors.Is(err, queue.ErrJobNotFound) {
				return &exitError{code: 1, err: fmt.Errorf("job %s not found", id)}
			}
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), service.JobDetailView(info))
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "only if the job belongs to this tenant")
	return cmd
}
