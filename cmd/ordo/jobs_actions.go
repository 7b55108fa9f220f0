package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// jobAction is what cancel and retry share: the verb, the error that
// means "not in a state that allows it", what that state is, and the call.
type jobAction struct {
	name    string // "cancel", the recorded action
	done    string // "cancelled"
	refused error  // queue.ErrJobFinished, queue.ErrNotRetryable
	allowed string // why the refusal: "only a job that has not finished can be cancelled"
	do      func(q *queue.Queue, info queue.JobInfo) error
}

func newJobsCancelCommand(g *globalFlags) *cobra.Command {
	var tenant, reason, by string
	by = defaultActor()
	cmd := &cobra.Command{
		Use:   "cancel JOB_ID...",
		Short: "Cancel jobs of a tenant that have not finished, whoever holds them",
		Long: `Cancels each job: pending and scheduled jobs are not handed out any more, and a running job's worker loses
its lease (its completion is refused). The reason is kept as the job's last error; without --reason it says
who cancelled it. Each cancel is recorded as an operator action (the dashboard's job page lists it).

Each job gets one line: on stdout when it is cancelled, with its state before; on stderr when it is not, with
its state now. A job id given twice is cancelled once.

Exit status: 0 when every job was cancelled. 2 when a job id is not a UUID (then nothing is done); when a job is
not found in --tenant (another tenant's job is not found, as in the HTTP API) or has finished already (succeeded,
failed, cancelled, chain_violation, or pruned by retention), after the other jobs were acted on; and on an error
such as a database that cannot be opened, which stops the command (the jobs printed before it were cancelled, the
rest were not tried).`,
		Example: `  ordo jobs cancel 6f1c2d8e-3b0a-5c7d-9e1f-2a3b4c5d6e7f --tenant acme
  ordo jobs cancel 6f1c2d8e-3b0a-5c7d-9e1f-2a3b4c5d6e7f 0b7e3c1a-9d2f-5e4b-8a6c-1f2e3d4c5b6a --tenant acme \
      --reason "customer withdrew the order" --by alice`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(reason) > 10_000 {
				return fmt.Errorf("--reason is %d bytes, at most 10000", len(reason))
			}
			if strings.ContainsRune(reason, 0) {
				return errors.New("--reason contains the character U+0000, which ordo does not store")
			}
			if !cmd.Flags().Changed("reason") {
				reason = "cancelled with ordo jobs cancel by " + by
			}
			return runJobAction(cmd, g, tenant, by, args, jobAction{
				name: "cancel", done: "cancelled", refused: queue.ErrJobFinished,
				allowed: "only a job that has not finished can be cancelled",
				do: func(q *queue.Queue, info queue.JobInfo) error {
					return q.CancelInTenant(cmd.Context(), info.TenantID, info.JobID, reason)
				},
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the jobs' tenant (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept as the jobs' last error (default: who cancelled them)")
	cmd.Flags().StringVar(&by, "by", by, "who cancels them, in the operator actions")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

func newJobsRetryCommand(g *globalFlags) *cobra.Command {
	var tenant, by string
	by = defaultActor()
	cmd := &cobra.Command{
		Use:   "retry JOB_ID...",
		Short: "Put failed or cancelled jobs of a tenant back in the queue, to run now with their attempts reset",
		Long: `Puts each job back to pending, to run now, on every side that holds it: its attempts are reset to 0, so it
gets its full max_attempts again; its last error stays until the next attempt overwrites it. A chain_violation job
is withheld on purpose and is never retried. Each retry is recorded as an operator action.

Each job gets one line: on stdout when it is retried, with its state before; on stderr when it is not, with its
state now. A job id given twice is retried once.

Exit status: 0 when every job was retried. 2 when a job id is not a UUID (then nothing is done); when a job is not
found in --tenant (another tenant's job is not found, as in the HTTP API) or is neither failed nor cancelled, after
the other jobs were acted on; and on an error such as a database that cannot be opened, which stops the command
(the jobs printed before it were retried, the rest were not tried).`,
		Example: `  ordo jobs retry 6f1c2d8e-3b0a-5c7d-9e1f-2a3b4c5d6e7f --tenant acme
  ordo jobs list --tenant acme --state failed --all | jq -r '.jobs[].job_id' | xargs ordo jobs retry --tenant acme`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runJobAction(cmd, g, tenant, by, args, jobAction{
				name: "retry", done: "retried", refused: queue.ErrNotRetryable,
				allowed: "only a failed or cancelled job can be retried",
				do: func(q *queue.Queue, info queue.JobInfo) error {
					return q.Retry(cmd.Context(), info.JobID)
				},
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the jobs' tenant (required)")
	cmd.Flags().StringVar(&by, "by", by, "who retries them, in the operator actions")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// runJobAction checks every argument before it touches a job (a typo in
// the list must not leave half of it done), then acts on each job in
// turn, going on past jobs it must refuse so that one stale id does not
// hold up the rest.
func runJobAction(cmd *cobra.Command, g *globalFlags, tenant, by string, args []string, a jobAction) error {
	ctx := cmd.Context()
	if err := chain.ValidateTenantID(tenant); err != nil {
		return fmt.Errorf("--tenant: %w", err)
	}
	if err := checkActor(by); err != nil {
		return err
	}
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	var bad []string
	for _, arg := range args {
		id, err := uuid.Parse(arg)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%q", arg))
		case !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("job id %s: want a UUID; no job was %s", strings.Join(bad, ", "), a.done)
	}
	h, err := g.openQueue(ctx, queue.DefaultOptions())
	if err != nil {
		return err
	}
	defer h.Close()
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	refused := 0
	for _, id := range ids {
		// The tenant is part of the lookup, as in the HTTP API: another
		// tenant's job is not found, and its state is not disclosed.
		info, err := h.q.GetInTenant(ctx, tenant, id)
		if errors.Is(err, queue.ErrJobNotFound) {
			fmt.Fprintf(errOut, "ordo: job %s not %s: not found in tenant %s\n", id, a.done, tenant)
			refused++
			continue
		}
		if err != nil {
			return fmt.Errorf("job %s: %w", id, err)
		}
		switch err := a.do(h.q, info); {
		case errors.Is(err, a.refused):
			fmt.Fprintf(errOut, "ordo: job %s not %s: it is %s, and %s\n", id, a.done, currentStatus(h.q, cmd, tenant, info), a.allowed)
			refused++
		case errors.Is(err, queue.ErrJobNotFound):
			fmt.Fprintf(errOut, "ordo: job %s not %s: not found in tenant %s\n", id, a.done, tenant)
			refused++
		case err != nil:
			return fmt.Errorf("job %s: %w", id, err)
		default:
			fmt.Fprintf(out, "job %s %s (was %s)\n", id, a.done, info.Status)
			recordAction(cmd, h.db, driver.OperatorAction{TenantID: tenant, JobID: id, Action: a.name, Actor: by,
				Detail: "was " + string(info.Status), At: time.Now().UTC()})
		}
	}
	if refused > 0 {
		return &exitError{code: 2, err: fmt.Errorf("%d of %d jobs not %s", refused, len(ids), a.done)}
	}
	return nil
}

// currentStatus is the job's status as it is after a refusal: the one
// read before may be stale (the job finished meanwhile), and the message
// must name the state that refused it.
func currentStatus(q *queue.Queue, cmd *cobra.Command, tenant string, before queue.JobInfo) queue.Status {
	if info, err := q.GetInTenant(cmd.Context(), tenant, before.JobID); err == nil {
		return info.Status
	}
	return before.Status
}
