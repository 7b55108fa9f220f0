package queue

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// ImportedJob is one entry of an offline node's chain, merged by Import:
// the job as it was enqueued there and where its entry was.
type ImportedJob struct {
	Job
	JobID     uuid.UUID // the offline entry's job id; Import checks it against Job
	CreatedAt time.Time
	Source    driver.ImportSource // Planned is Import's to set
}

// ImportResult says what Import did.
type ImportResult struct {
	Imported []EnqueueResult // the entries appended, in merge order
	Present  int             // entries whose job id the central log already had: dropped
}

// Import merges entries from offline nodes' chains into this queue's
// chains, in one deterministic order: (physical, counter, node) of their
// source t_hlc, then job id. An entry whose job id exists here (on either
// side, pruned or not) is dropped and counted. Each appended entry gets
// driver.ImportTimestamp of the tenant's greatest t_hlc so far and its
// source t_hlc: the source timestamp when it is the later, else the next
// one after it naming the source node, so that a tenant's timestamps stay
// unique and every chain's stay increasing. Nothing here depends on the
// importing node or on the order of jobs, so the same entries merged
// into the same chains give the same entries, byte for byte, on any node.
// The clock receives the greatest source timestamp first: one further
// ahead than MaxClockDriftMs refuses the whole import, nothing written.
// Jobs are validated as Enqueue validates them, and a job id that does not
// match its job is refused, naming the entry. Import needs a mode that
// writes the HLC side.
func (q *Queue) Import(ctx context.Context, jobs []ImportedJob) (ImportResult, error) {
	var res ImportResult
	if !q.Options().Mode().WritesHlc() {
		return res, fmt.Errorf("queue: import needs a mode that appends to the HLC chain (dual-write or HLC), not %s", q.Options().Mode())
	}
	now := q.now()
	type item struct {
		src hlc.Timestamp
		p   *driver.Prepared
	}
	items := make([]item, 0, len(jobs))
	var latest hlc.Timestamp
	for _, ij := range jobs {
		what := fmt.Sprintf("entry %s of node %s (job %s)", ij.Source.THLC, ij.Source.Node, ij.JobID)
		src, err := hlc.Parse(ij.Source.THLC)
		if err != nil {
			return res, fmt.Errorf("%w: %s: %w", ErrInvalidJob, what, err)
		}
		if src.Node != ij.Source.Node {
			return res, fmt.Errorf("%w: %s: its t_hlc names node %s", ErrInvalidJob, what, src.Node)
		}
		if src.Node == q.clock.NodeID() {
			// Its timestamps would be this node's own: the clock may issue
			// the ones Import gives merged entries, and a tenant's t_hlc
			// would no longer be unique.
			return res, fmt.Errorf("%w: %s: node %s is the importing node itself; an offline node needs an id of its own", ErrInvalidJob, what, src.Node)
		}
		p, err := q.prepare(ij.Job, now)
		if err != nil {
			return res, fmt.Errorf("%s: %w", what, err)
		}
		if p.JobID != ij.JobID {
			return res, fmt.Errorf("%w: %s: the job it carries has id %s", ErrInvalidJob, what, p.JobID)
		}
		p.CreatedAt = ij.CreatedAt.Truncate(time.Millisecond)
		source := ij.Source
		p.Source = &source
		items = append(items, item{src, p})
		if src.After(latest) {
			latest = src
		}
	}
	if !latest.IsZero() {
		if _, err := q.clock.Receive(latest); err != nil {
			if errors.Is(err, hlc.ErrClockDrift) {
				q.metrics.ClockDriftRefusals.Inc()
			}
			return res, fmt.Errorf("queue: import: %w", err)
		}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		return cmp.Or(a.src.Compare(b.src), bytes.Compare(a.p.JobID[:], b.p.JobID[:]))
	})

	// Plan every new entry's timestamp, tenant by tenant.
	audit := q.backend.AuditStore()
	cursor := map[string]hlc.Timestamp{}
	seen := map[uuid.UUID]*driver.Prepared{}
	var fresh []*driver.Prepared
	for _, it := range items {
		p := it.p
		if first, ok := seen[p.JobID]; ok {
			// A job two nodes enqueued each is merged once, as the one
			// first in merge order (the earlier source t_hlc): that does
			// not depend on the order of the bundles. The same source
			// entry from two bundles (overlapping exports) is merged once
			// too; but two different entries with one source t_hlc would
			// make the result depend on which bundle came first.
			if first.Source.THLC == p.Source.THLC && !sameImported(first, p) {
				return res, fmt.Errorf("%w: job %s comes twice with different entries (source t_hlc %s and %s): refusing to choose one",
					ErrInvalidJob, p.JobID, first.Source.THLC, p.Source.THLC)
			}
			res.Present++
			continue
		}
		seen[p.JobID] = p
		if _, err := q.backend.GetJob(ctx, driver.JobRef{TenantID: p.TenantID, JobID: p.JobID}); err == nil {
			res.Present++
			continue
		} else if !errors.Is(err, ErrJobNotFound) {
			return res, err
		}
		c, ok := cursor[p.TenantID]
		if !ok {
			last, err := audit.LastTHLC(ctx, p.TenantID)
			if err != nil {
				return res, err
			}
			if last != "" {
				if c, err = hlc.Parse(last); err != nil {
					return res, fmt.Errorf("queue: import: tenant %s: its last t_hlc %q: %w", p.TenantID, last, err)
				}
			}
		}
		p.Source.Planned = driver.ImportTimestamp(c, it.src)
		cursor[p.TenantID] = p.Source.Planned
		fresh = append(fresh, p)
	}
	for start := 0; start < len(fresh); start += reconcileBatch {
		batch := fresh[start:min(start+reconcileBatch, len(fresh))]
		out, err := q.writeWith(ctx, batch, now, func(b *driver.EnqueueBatch) ([]EnqueueResult, error) { return q.backend.Enqueue(ctx, b) })
		if err != nil {
			return res, err
		}
		for _, r := range out {
			if r.Deduplicated { // appended meanwhile by another writer
				res.Present++
				continue
			}
			res.Imported = append(res.Imported, r)
		}
	}
	return res, nil
}

// sameImported reports whether two imported jobs are the same entry of
// the same offline chain: the same source, and every field of the job.
func sameImported(a, b *driver.Prepared) bool {
	return a.Source.Node == b.Source.Node && a.Source.THLC == b.Source.THLC && a.Source.Link == b.Source.Link &&
		a.Source.PrevLink == b.Source.PrevLink && a.Source.PrevNull == b.Source.PrevNull &&
		a.PayloadHash == b.PayloadHash && a.Kind == b.Kind && a.IdempotencyKey == b.IdempotencyKey &&
		a.Priority == b.Priority && a.MaxAttempts == b.MaxAttempts && a.RunAt.Equal(b.RunAt) && a.CreatedAt.Equal(b.CreatedAt) &&
		bytes.Equal(a.Metadata, b.Metadata)
}
