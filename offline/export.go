package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// ExportParams select what Export writes.
type ExportParams struct {
	Tenant string
	Node   string // only the entries this node appended; "" for all
	After  string // only entries whose t_hlc sorts after this one; "" for all
	Now    time.Time
}

// Export reads a tenant's chain entries into a bundle: every chain of the
// tenant that has entries matching p, each with its latest signed
// checkpoint. A tenant with nothing to export is an error, so that a typo
// does not write an empty bundle.
func Export(ctx context.Context, store driver.AuditStore, p ExportParams) (*Bundle, error) {
	if err := chain.ValidateTenantID(p.Tenant); err != nil {
		return nil, fmt.Errorf("offline: export: %w", err)
	}
	if p.Node != "" {
		if err := hlc.ValidateNodeID(p.Node); err != nil {
			return nil, fmt.Errorf("offline: export: %w", err)
		}
	}
	if p.After != "" {
		if _, err := hlc.Parse(p.After); err != nil {
			return nil, fmt.Errorf("offline: export: --after: %w", err)
		}
	}
	keys, err := store.Chains(ctx, p.Tenant)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Format: Format, Tenant: p.Tenant, Node: p.Node, After: p.After, ExportedAt: p.Now.UTC().Truncate(time.Millisecond)}
	total := 0
	for _, k := range keys {
		rows, err := store.ExportEntries(ctx, driver.ExportParams{Key: k, AfterTHLC: p.After, Node: p.Node})
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			continue
		}
		c := Chain{Partition: k.PartitionKey, Entries: make([]Entry, len(rows))}
		for i := range rows {
			c.Entries[i] = EntryOf(&rows[i])
		}
		if cps, err := store.Checkpoints(ctx, k, 1); err != nil {
			return nil, err
		} else if len(cps) > 0 {
			c.Checkpoint = string(cps[0].Note)
		}
		b.Chains = append(b.Chains, c)
		total += len(rows)
	}
	if total == 0 {
		what := "tenant " + p.Tenant
		if p.Node != "" {
			what += ", node " + p.Node
		}
		if p.After != "" {
			what += ", after " + p.After
		}
		return nil, fmt.Errorf("offline: export: no chain entries of %s", what)
	}
	return b, nil
}

// EntryOf is the bundle form of an exported log entry.
func EntryOf(r *driver.ExportedEntry) Entry {
	e := Entry{Pos: r.Entry.Pos, THLC: r.Entry.THLC, Node: r.Node, JobID: r.JobID, Kind: r.Kind,
		IdempotencyKey: r.IdempotencyKey, Payload: json.RawMessage(r.Payload), PayloadHash: r.Entry.PayloadHash.String(),
		Link: r.Entry.Link.String(), Priority: r.Priority, MaxAttempts: r.MaxAttempts,
		RunAt: r.RunAt.UTC(), CreatedAt: r.CreatedAt.UTC()}
	if !r.Entry.PrevLinkNull {
		prev := r.Entry.PrevLink.String()
		e.PrevLink = &prev
	}
	return e
}
