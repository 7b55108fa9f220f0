package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// PeriodicJob is a job the leader enqueues at every occurrence of its
// schedule.
type PeriodicJob struct {
	// Name identifies the schedule; with the occurrence's time it makes
	// the job's idempotency key, so it must stay the same across deploys
	// (renaming it re-enqueues a current occurrence once).
	Name     string
	Schedule Schedule
	TenantID string
	// Args builds the job of the occurrence at at. Its InsertOpts'
	// IdempotencyKey is overwritten; a zero RunAt means at.
	Args func(at time.Time) (Args, *InsertOpts)
	// CatchUp is how far back a leader that just took over looks for an
	// occurrence it may have missed; default (0) the leadership handover
	// window (LeaderTTL + 2 * MaintenanceInterval). Only the most recent
	// missed occurrence is enqueued: a schedule that was not served for a
	// while runs once, not once per missed occurrence.
	CatchUp time.Duration
}

type periodicState struct {
	job    PeriodicJob
	cursor time.Time // occurrences at or before it are done
}

// periodicKey is the idempotency key of one occurrence: the same for every
// client, so two leaders (or a leader and its successor) enqueueing the
// same occurrence make one job. The driver defines it, because the
// dashboard finds an occurrence's job by it (driver.LastPeriodic).
func periodicKey(name string, at time.Time) string { return driver.PeriodicKey(name, at) }

// maintain runs the maintenance loop: win or renew leadership (on a
// backend without leadership every client maintains), rescue expired
// leases, prune finished jobs past their retention, enqueue periodic jobs.
func (c *Client) maintain(ctx context.Context) {
	defer c.bgWG.Done()
	lead := c.q.Backend()
	elects := lead.Capabilities().Leadership
	leader := false
	defer func() {
		select {
		case <-c.crashed:
			return // a crashed process resigns nothing
		default:
		}
		if leader && elects {
			rctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
			defer cancel()
			if err := lead.Resign(rctx, c.cfg.LeaderName, c.id); err != nil {
				c.log.Warn("worker: resigning leadership failed; it lapses on its own", "error", err)
			}
			c.emit(Event{Type: EventLeadership, Leader: false})
		}
	}()
	t := time.NewTicker(c.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		now := c.now()
		isLeader, err := true, error(nil)
		if elects {
			isLeader, err = lead.TryLead(ctx, driver.LeadParams{Name: c.cfg.LeaderName, Holder: c.id, Until: now.Add(c.cfg.LeaderTTL), Now: now})
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("worker: leadership election failed; skipping this maintenance round", "error", err)
			isLeader = false
		}
		if isLeader != leader {
			leader = isLeader
			c.emit(Event{Type: EventLeadership, Leader: leader})
			c.log.Info("worker: maintenance leadership changed", "leader", leader, "name", c.cfg.LeaderName)
			for _, p := range c.periodic {
				// A new term starts from the handover window, not from
				// wherever an earlier term stopped.
				p.cursor = time.Time{}
			}
		}
		if isLeader {
			c.maintainOnce(ctx, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-c.crashed:
			return
		case <-t.C:
		}
	}
}

func (c *Client) maintainOnce(ctx context.Context, now time.Time) {
	rescued, failed, err := c.q.RescueExpired(ctx)
	if err != nil && ctx.Err() == nil {
		c.log.Error("worker: rescuing expired leases failed", "error", err)
	}
	if rescued+failed > 0 {
		c.emit(Event{Type: EventRescued, Rescued: rescued, RescueFailed: failed})
		c.log.Info("worker: rescued jobs whose lease expired", "rescued", rescued, "failed", failed)
		c.wakeAll()
	}
	// Activity first, and pruning as of the same moment: a minute is
	// recorded before the jobs it counts can be pruned (given a retention
	// longer than driver.DefaultActivitySettle).
	c.rollupActivity(ctx, now)
	pruned, err := c.q.PruneAt(ctx, c.cfg.Retention, now)
	if err != nil && ctx.Err() == nil {
		c.log.Error("worker: pruning finished jobs failed; trying again next round", "error", err)
	}
	if pruned.HLC+pruned.Legacy > 0 {
		c.emit(Event{Type: EventPruned, Pruned: pruned})
		c.log.Debug("worker: pruned finished jobs", "hlc", pruned.HLC, "legacy", pruned.Legacy)
	}
	handover := c.cfg.LeaderTTL + 2*c.cfg.MaintenanceInterval
	for _, p := range c.periodic {
		if ctx.Err() != nil {
			return
		}
		if p.cursor.IsZero() {
			window := p.job.CatchUp
			if window <= 0 {
				window = handover
			}
			p.cursor = now.Add(-window)
		}
		at := latest(p.job.Schedule, p.cursor, now)
		if at.IsZero() {
			continue
		}
		if err := c.enqueueOccurrence(ctx, p.job, at); err != nil {
			if ctx.Err() == nil {
				c.log.Error("worker: enqueuing a periodic job failed; trying again next round", "periodic", p.job.Name, "at", at, "error", err)
			}
			continue
		}
		p.cursor = at
	}
}

func (c *Client) enqueueOccurrence(ctx context.Context, p PeriodicJob, at time.Time) error {
	args, opts := p.Args(at)
	var o InsertOpts
	if opts != nil {
		o = *opts
	}
	o.IdempotencyKey = periodicKey(p.Name, at)
	if o.RunAt.IsZero() {
		o.RunAt = at
	}
	j, merged, err := newJob(p.TenantID, args, &o, c.kinds)
	if err != nil {
		return err
	}
	if !merged.Unique.IsZero() {
		// The occurrence is the job's identity, so that a new leader does
		// not enqueue an occurrence again; other uniqueness would undo that.
		return fmt.Errorf("worker: periodic job %q: InsertOpts.Unique does not apply (each occurrence is one job)", p.Name)
	}
	// The occurrence is the job's identity: args changed by a new
	// deployment for an occurrence already enqueued are the same job.
	j.KeyDerived = true
	res, err := c.q.Enqueue(ctx, j)
	if err != nil {
		return err
	}
	c.emit(Event{Type: EventPeriodicEnqueued, Periodic: p.Name, OccurrenceAt: at, JobID: res.JobID, Deduplicated: res.Deduplicated})
	return nil
}
