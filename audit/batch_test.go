package audit_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// With snapshots enabled (queue.Config.AfterDequeue), every dequeued batch
// leaves one signed snapshot per chain it touched, which verifies.
func TestSnapshotPerDequeuedBatch(t *testing.T) {
	ctx := context.Background()
	priv, pub, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubKey, err := audit.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for name, url := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "ordo.db"),
		"postgres": testdb.NewDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			db := testdb.OpenMigrated(t, store.Open, url)
			as := db.AuditStore()
			clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a", Store: db.HLCState()})
			now := func() time.Time { return time.UnixMilli(wall.UnixMilli()) }
			metrics, _ := metrics.New(nil)
			snap := &audit.Snapshotter{Store: as, Key: key, Clock: clock, Metrics: metrics, Now: now}
			var hookErrs []error
			q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Now: now, Metrics: metrics,
				Options: queue.Options{EnableHlcOrdering: true},
				AfterDequeue: func(ctx context.Context, leases []driver.Lease) {
					if _, err := snap.SnapshotBatch(ctx, leases); err != nil {
						hookErrs = append(hookErrs, err)
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 12 {
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", PartitionKey: fmt.Sprint("p", i%2), Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
					t.Fatal(err)
				}
			}
			wall.Advance(time.Second) // snapshots are stamped later than the jobs
			batches := 0
			for {
				leases, err := q.Dequeue(ctx, queue.DequeueOptions{Limit: 4})
				if err != nil {
					t.Fatal(err)
				}
				if len(leases) == 0 {
					break
				}
				batches++
			}
			if len(hookErrs) > 0 {
				t.Fatalf("snapshotting batches: %v", hookErrs)
			}
			snaps, err := as.Snapshots(ctx, driver.SnapshotFilter{TenantID: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			// 3 batches of 4 jobs in t_hlc order, alternating partitions:
			// each batch touches both chains.
			if batches != 3 || len(snaps) != 6 {
				t.Fatalf("%d batches left %d snapshots, want 3 and 6", batches, len(snaps))
			}
			var total int64
			for i := range snaps {
				check, err := audit.VerifySnapshot(ctx, as, &snaps[i], pubKey)
				if err != nil || !check.Valid || !check.SignatureOK {
					t.Fatalf("snapshot %d does not verify: %+v, %v", i, check, err)
				}
				total += snaps[i].EntryCount
			}
			if total != 12 {
				t.Fatalf("snapshots cover %d entries, want 12", total)
			}
			// A snapshot's snapshot_hlc is a stored timestamp too: the node's
			// persisted clock bound must be above it, or a restarted node
			// could issue it again.
			last, err := hlc.Parse(snaps[len(snaps)-1].SnapshotHLC)
			if err != nil {
				t.Fatal(err)
			}
			if bound, err := db.HLCState().Load(ctx, last.Node); err != nil || bound <= last.Physical {
				t.Fatalf("clock bound %d (%v) is not above the stored snapshot_hlc %s", bound, err, last)
			}
			var m dto.Metric
			if err := metrics.BatchSnapshots.Write(&m); err != nil || m.GetCounter().GetValue() != 6 {
				t.Fatalf("scheduler_batch_snapshots_created_total = %v (%v), want 6", m.GetCounter().GetValue(), err)
			}
		})
	}
}
