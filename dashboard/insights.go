package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// kindRecentWindow is how far back the queues page counts completed and
// failed jobs.
const kindRecentWindow = time.Hour

// kindRow is one kind of a tenant's jobs on the queues page.
type kindRow struct {
	driver.KindCount
	Paused      *driver.PausedQueue // the kind's own pause, if any
	WorkerQueue string              // the queue of this node's worker client that runs it; "" if none does
}

// workerQueueRow is one queue of this node's worker client, with the
// tenant's jobs of its kinds.
type workerQueueRow struct {
	WorkerQueue
	Counts driver.KindCount
}

// queueRows lays out a tenant's kinds (those with jobs, those paused, and
// those this node's worker runs) and this node's worker queues.
func (d *Dashboard) queueRows(ctx context.Context, tenant string, now time.Time, paused []driver.PausedQueue) ([]kindRow, []workerQueueRow, driver.KindCount, error) {
	counts, err := d.backend.KindCounts(ctx, driver.KindCountParams{TenantID: tenant, Since: now.Add(-kindRecentWindow)})
	if err != nil {
		return nil, nil, driver.KindCount{}, err
	}
	var wqs []workerQueueRow
	if d.cfg.Worker != nil && d.cfg.Worker.Queues != nil {
		for _, q := range d.cfg.Worker.Queues() {
			wqs = append(wqs, workerQueueRow{WorkerQueue: q})
		}
	}
	// queueOf is the worker queue that runs kind: the one it is
	// registered to, else the queue that takes every kind.
	queueOf := func(kind string) int {
		all := -1
		for i, q := range wqs {
			if slices.Contains(q.Kinds, kind) {
				return i
			}
			if q.AllKinds {
				all = i
			}
		}
		return all
	}
	byKind := map[string]*kindRow{}
	row := func(kind string) *kindRow {
		if byKind[kind] == nil {
			byKind[kind] = &kindRow{KindCount: driver.KindCount{Kind: kind}}
		}
		return byKind[kind]
	}
	for _, c := range counts {
		row(c.Kind).KindCount = c
	}
	for i := range paused {
		if paused[i].Kind != "" {
			row(paused[i].Kind).Paused = &paused[i]
		}
	}
	for _, q := range wqs {
		for _, k := range q.Kinds {
			row(k)
		}
	}
	var total driver.KindCount
	rows := make([]kindRow, 0, len(byKind))
	for _, r := range byKind {
		if i := queueOf(r.Kind); i >= 0 {
			r.WorkerQueue = wqs[i].Name
			addCounts(&wqs[i].Counts, r.KindCount)
		}
		addCounts(&total, r.KindCount)
		rows = append(rows, *r)
	}
	slices.SortFunc(rows, func(a, b kindRow) int { return strings.Compare(a.Kind, b.Kind) })
	return rows, wqs, total, nil
}

func addCounts(dst *driver.KindCount, c driver.KindCount) {
	dst.Pending += c.Pending
	dst.Scheduled += c.Scheduled
	dst.Running += c.Running
	dst.Succeeded += c.Succeeded
	dst.Failed += c.Failed
}

// periodicRow is a periodic job as the periodic jobs page shows it.
type periodicRow struct {
	PeriodicJob
	Last       driver.PeriodicRun
	HasLast    bool
	LastStatus queue.Status // its job's status; "" when its state is gone
	Next       time.Time    // zero: the schedule has no more occurrences
}

// periodic: GET /periodic lists the periodic jobs of this node's worker
// client that the caller may see: schedule, last occurrence (the latest
// with a job in the log) and next (from the schedule and this node's
// clock).
func (d *Dashboard) periodic(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	data := map[string]any{"HasWorker": d.cfg.Worker != nil}
	var rows []periodicRow
	if d.cfg.Worker != nil {
		for _, p := range d.cfg.Worker.Periodic {
			if !v.Principal.MayActFor(p.TenantID) {
				continue // another tenant's: not even its existence is shown
			}
			row := periodicRow{PeriodicJob: p}
			if p.Next != nil {
				row.Next = p.Next(v.Now)
			}
			run, ok, err := d.backend.LastPeriodic(ctx, p.TenantID, p.Name)
			if err != nil {
				d.internal(w, r, v, err)
				return
			}
			if ok {
				row.Last, row.HasLast = run, true
				info, err := d.cfg.Queue.GetInTenant(ctx, p.TenantID, run.JobID)
				switch {
				case errors.Is(err, queue.ErrJobNotFound):
				case err != nil:
					d.internal(w, r, v, err)
					return
				default:
					row.LastStatus = info.Status
				}
			}
			rows = append(rows, row)
		}
	}
	data["Rows"] = rows
	v.Title, v.Section, v.Live = "Periodic jobs", "periodic", true
	v.Data = data
	d.render(w, r, http.StatusOK, "periodic", v)
}

// windowWords names a window for a table heading: "last hour", "last 15
// minutes".
func windowWords(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "last hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("last %d hours", d/time.Hour)
	}
	return fmt.Sprintf("last %d minutes", d/time.Minute)
}
