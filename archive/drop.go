package archive

import (
	"context"
	"fmt"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/driver"
)

// Drop removes the entries of the archive in dir from the database
// (driver.LogArchive.DropArchived), once the archive, read back from
// disk, verifies (VerifyChain, joined to the database's record of the
// archive before it), is the range the database recorded, and holds the
// very entries the database holds (link for link).
func Drop(ctx context.Context, store driver.AuditStore, dir string, key *audit.PublicKey, now time.Time) (driver.DropResult, error) {
	a, err := Open(dir)
	if err != nil {
		return driver.DropResult{}, err
	}
	m := &a.Manifest
	k := m.Key()
	recs, err := store.ChainArchives(ctx, k)
	if err != nil {
		return driver.DropResult{}, err
	}
	at := -1
	for i := range recs {
		if recs[i].StartPos == m.StartPos {
			at = i
		}
	}
	if at < 0 {
		return driver.DropResult{}, fmt.Errorf("archive: %s: the database has no record of archiving %s/%q from chain_pos %d: it was not written from this database",
			dir, k.TenantID, k.PartitionKey, m.StartPos)
	}
	rec := &recs[at]
	if rec.EndPos != m.EndPos || rec.LastLink.String() != m.LastLink || b64(rec.Root) != m.Root {
		return driver.DropResult{}, fmt.Errorf("%w: %s: the database recorded another archive of chain_pos %d (to %d, root %s)",
			ErrInvalid, dir, rec.StartPos, rec.EndPos-1, b64(rec.Root))
	}
	if !rec.DroppedAt.IsZero() {
		return driver.DropResult{}, fmt.Errorf("%w: %s: its entries were dropped already, at %s", driver.ErrArchiveRange, dir, rec.DroppedAt.Format(time.RFC3339))
	}
	var after *driver.ChainArchive
	if at > 0 {
		after = &recs[at-1]
	}
	prefix, err := VerifyChain([]*Archive{a}, key, after)
	if err != nil {
		return driver.DropResult{}, err
	}
	i := 0
	err = store.Scan(ctx, driver.ScanParams{Key: k, From: m.StartPos, To: m.EndPos}, func(e *driver.LogEntry) error {
		if e.Pos != m.StartPos+int64(i) || string(e.Link) != string(prefix.Links[i][:]) {
			return fmt.Errorf("%w: %s: the database's entry at chain_pos %d is not the archived one", ErrInvalid, dir, e.Pos)
		}
		i++
		return nil
	})
	if err != nil {
		return driver.DropResult{}, err
	}
	if int64(i) != m.EndPos-m.StartPos {
		return driver.DropResult{}, fmt.Errorf("%w: %s: the database holds %d of the archive's %d entries", driver.ErrArchiveMismatch, dir, i, m.EndPos-m.StartPos)
	}
	return store.DropArchived(ctx, driver.DropParams{Key: k, StartPos: m.StartPos, Now: now})
}
