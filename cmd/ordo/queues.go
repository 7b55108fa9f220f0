package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

func newQueuesCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queues",
		Short: "List paused queues and each tenant's unfinished jobs, pause a queue, or resume it",
		Long: `A queue is a tenant's jobs (every kind) or one kind of them. A paused queue's jobs stay where they are and
are not handed out by any dequeue, on either read side, until it is resumed; enqueues into it go on. Pausing a
tenant's whole queue and pausing one of its kinds are separate pauses: resuming one leaves the other.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newQueuesListCommand(g), newQueuesPauseCommand(g), newQueuesResumeCommand(g))
	return cmd
}

// queuesJSON is what `ordo queues list` prints.
type queuesJSON struct {
	Paused  []pausedJSON `json:"paused"`
	Tenants []tenantJSON `json:"tenants"`
}

type pausedJSON struct {
	Tenant string `json:"tenant"`
	// Kind "" is the tenant's whole queue.
	Kind     string    `json:"kind"`
	PausedAt time.Time `json:"paused_at"`
	PausedBy string    `json:"paused_by"`
}

// tenantJSON counts a tenant's jobs that are not finished: what a pause
// holds back (pending, scheduled) and what was already handed out.
type tenantJSON struct {
	Tenant    string `json:"tenant"`
	Pending   int64  `json:"pending"`
	Scheduled int64  `json:"scheduled"`
	Running   int64  `json:"running"`
}

func newQueuesListCommand(g *globalFlags) *cobra.Command {
	var tenant string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print the paused queues (who paused them, when) and each tenant's pending, scheduled and running jobs, as JSON",
		Long: `Prints, as JSON, "paused": every paused queue (tenant, kind, paused_at, paused_by; kind "" is the tenant's
whole queue), sorted by tenant and kind, and "tenants": for each tenant with unfinished jobs, how many are pending,
scheduled and running (each job counted once, whichever sides hold it). With --tenant, only that tenant, listed
in "tenants" even when it has no unfinished jobs.

` + readOnlyHelp,
		Example: `  ordo queues list
  ordo queues list --tenant acme --db postgres://ordo@localhost/ordo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if tenant != "" {
				if err := chain.ValidateTenantID(tenant); err != nil {
					return fmt.Errorf("--tenant: %w", err)
				}
			}
			db, err := g.openExisting(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			paused, err := db.PausedQueues(ctx, tenant)
			if err != nil {
				return schemaError(err)
			}
			counts, err := db.CountByStatus(ctx, driver.CountParams{TenantID: tenant,
				Statuses: []driver.Status{queue.StatusPending, queue.StatusScheduled, queue.StatusRunning}})
			if err != nil {
				return schemaError(err)
			}
			out := queuesJSON{Paused: []pausedJSON{}, Tenants: []tenantJSON{}}
			for _, p := range paused {
				out.Paused = append(out.Paused, pausedJSON{Tenant: p.TenantID, Kind: p.Kind, PausedAt: wireTime(p.PausedAt), PausedBy: p.PausedBy})
			}
			// CountByStatus sorts by tenant, so a tenant's counts are adjacent.
			for _, c := range counts {
				if n := len(out.Tenants); n == 0 || out.Tenants[n-1].Tenant != c.TenantID {
					out.Tenants = append(out.Tenants, tenantJSON{Tenant: c.TenantID})
				}
				t := &out.Tenants[len(out.Tenants)-1]
				switch c.Status {
				case queue.StatusPending:
					t.Pending = c.Count
				case queue.StatusScheduled:
					t.Scheduled = c.Count
				case queue.StatusRunning:
					t.Running = c.Count
				}
			}
			if tenant != "" && len(out.Tenants) == 0 {
				out.Tenants = append(out.Tenants, tenantJSON{Tenant: tenant})
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant (default: every tenant)")
	return cmd
}

// wireTime is a stored time as every command prints it: UTC, to the
// millisecond, which is what both backends keep (PostgreSQL would keep
// microseconds of a time the dashboard wrote, SQLite not), so both print
// the same.
func wireTime(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// schemaError turns a query's "no such table" into what to do about it.
// PostgreSQL says so with SQLSTATE 42P01 (undefined_table) or 3F000 (no
// scheduler schema); SQLite only in the message.
func schemaError(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") ||
		strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("the database has no ordo schema, or an older one without the tables this command reads (%w): run ordo migrate first; this command does not change the database", err)
	}
	return err
}

// queueKeyFlags are --tenant and --kind of pause and resume.
type queueKeyFlags struct {
	tenant, kind string
}

func (f *queueKeyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.tenant, "tenant", "", "tenant id (required)")
	cmd.Flags().StringVar(&f.kind, "kind", "", "only this kind of the tenant's jobs (default: the tenant's whole queue)")
	_ = cmd.MarkFlagRequired("tenant")
}

func (f *queueKeyFlags) key(cmd *cobra.Command) (driver.QueueKey, error) {
	k := driver.QueueKey{TenantID: f.tenant, Kind: f.kind}
	if cmd.Flags().Changed("kind") && f.kind == "" {
		return k, errors.New(`--kind "": leave --kind out to name the tenant's whole queue`)
	}
	if err := k.Validate(); err != nil {
		return k, err
	}
	return k, nil
}

func newQueuesPauseCommand(g *globalFlags) *cobra.Command {
	var qf queueKeyFlags
	by := defaultActor()
	cmd := &cobra.Command{
		Use:   "pause",
		Short: "Pause a tenant's queue, or one kind of it: no dequeue hands its jobs out until it is resumed",
		Long: `Pauses the tenant's whole queue, or with --kind only that kind of its jobs. Jobs already running go on
(and are completed, failed or rescued as usual); pending and scheduled jobs stay and are not handed out by any
dequeue, on either read side, until ordo queues resume. Enqueues go on. The pause is recorded as an operator action
(the dashboard's queues page lists it) with --by as the actor.

Exit status: 0 when the queue is paused now, 1 when it was already paused (the first pause is kept, with its time
and actor, which are printed: a script that pauses, works and resumes learns that the pause is not its own to
lift), 2 on error (a bad tenant or kind, a database that cannot be opened or migrated).`,
		Example: `  ordo queues pause --tenant acme
  ordo queues pause --tenant acme --kind email.send --by alice --db postgres://ordo@localhost/ordo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			k, db, err := openQueueAction(cmd, g, &qf, by)
			if err != nil {
				return err
			}
			defer db.Close()
			// Milliseconds: what both backends keep, so that the pause read
			// back below compares equal to this one when it is ours.
			now := time.Now().UTC().Truncate(time.Millisecond)
			if err := db.PauseQueue(ctx, driver.PauseParams{Queue: k, By: by, Now: now}); err != nil {
				return err
			}
			// PauseQueue keeps an earlier pause silently: read back whose
			// pause holds.
			paused, err := db.PausedQueues(ctx, k.TenantID)
			if err != nil {
				return err
			}
			for _, p := range paused {
				if p.QueueKey == k && (p.PausedBy != by || !p.PausedAt.Equal(now)) {
					fmt.Fprintf(cmd.OutOrStdout(), "queue %s was already paused, since %s by %s; that pause is kept\n",
						queueName(k), wireTime(p.PausedAt).Format(time.RFC3339Nano), p.PausedBy)
					return &exitError{code: 1, err: fmt.Errorf("queue %s was already paused: nothing changed", queueName(k))}
				}
			}
			recordAction(cmd, db, driver.OperatorAction{TenantID: k.TenantID, Kind: k.Kind, Action: "pause", Actor: by, At: now})
			fmt.Fprintf(cmd.OutOrStdout(), "queue %s paused by %s\n", queueName(k), by)
			return nil
		},
	}
	qf.register(cmd)
	cmd.Flags().StringVar(&by, "by", by, "who pauses it, as paused_by and in the operator actions")
	return cmd
}

func newQueuesResumeCommand(g *globalFlags) *cobra.Command {
	var qf queueKeyFlags
	by := defaultActor()
	cmd := &cobra.Command{
		Use:   "resume",
		Short: "Resume a paused queue: its jobs are handed out again",
		Long: `Resumes the tenant's whole queue, or with --kind that kind's queue; the two are separate pauses, and
resuming one leaves the other paused. The resume is recorded as an operator action with --by as the actor.

Exit status: 0 when the queue was paused and is resumed, 1 when it was not paused (nothing changed; the tenant's
paused queues, if any, are printed, since a mistyped --kind is the usual cause and would otherwise leave the queue
meant paused without anyone noticing), 2 on error.`,
		Example: `  ordo queues resume --tenant acme
  ordo queues resume --tenant acme --kind email.send --db postgres://ordo@localhost/ordo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			k, db, err := openQueueAction(cmd, g, &qf, by)
			if err != nil {
				return err
			}
			defer db.Close()
			was, err := db.ResumeQueue(ctx, k)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !was {
				paused, err := db.PausedQueues(ctx, k.TenantID)
				if err != nil {
					return err
				}
				names := make([]string, len(paused))
				for i, p := range paused {
					names[i] = queueName(p.QueueKey)
				}
				still := "none"
				if len(names) > 0 {
					still = strings.Join(names, ", ")
				}
				fmt.Fprintf(out, "queue %s was not paused; paused queues of tenant %s: %s\n", queueName(k), k.TenantID, still)
				return &exitError{code: 1, err: fmt.Errorf("queue %s was not paused: nothing changed", queueName(k))}
			}
			recordAction(cmd, db, driver.OperatorAction{TenantID: k.TenantID, Kind: k.Kind, Action: "resume", Actor: by, At: time.Now().UTC()})
			fmt.Fprintf(out, "queue %s resumed\n", queueName(k))
			return nil
		},
	}
	qf.register(cmd)
	cmd.Flags().StringVar(&by, "by", by, "who resumes it, in the operator actions")
	return cmd
}

// openQueueAction reads a pause or resume's queue and actor and opens the
// database (migrating it: these commands write).
func openQueueAction(cmd *cobra.Command, g *globalFlags, qf *queueKeyFlags, by string) (driver.QueueKey, store.DB, error) {
	k, err := qf.key(cmd)
	if err != nil {
		return k, nil, err
	}
	if err := checkActor(by); err != nil {
		return k, nil, err
	}
	db, err := g.openMigrated(cmd.Context())
	return k, db, err
}
