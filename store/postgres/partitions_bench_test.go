package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
)

// benchLog is a migrated database whose scheduler_log has n partitions
// of period after its first one, and a queue whose clock stands in the
// first of them.
func benchLog(b *testing.B, n int, period time.Duration) (*postgres.DB, *queue.Queue, *hlc.ManualClock) {
	b.Helper()
	ctx := context.Background()
	db := testdb.OpenMigrated(b, postgres.Open, testdb.NewDatabase(b))
	var hi string
	if err := db.Pool.QueryRow(ctx, `SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
		WHERE c.oid = 'scheduler.scheduler_log_initial'::regclass`).Scan(&hi); err != nil {
		b.Fatal(err)
	}
	var ms int64
	if _, err := fmt.Sscanf(hi, "FOR VALUES FROM (MINVALUE) TO ('%d')", &ms); err != nil {
		b.Fatalf("the first partition's bounds: %q: %v", hi, err)
	}
	start := time.UnixMilli(ms).UTC()
	for made := 0; made < n; {
		res, err := db.EnsureLogPartitions(ctx, start.Add(time.Duration(made)*period-time.Hour), period)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Created) == 0 {
			b.Fatalf("no partition made after %d", made)
		}
		made += len(res.Created)
	}
	clock, wall := hlctest.ManualClock(b, start.Add(time.Hour).UnixMilli(), hlc.Config{Node: "node-a"})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true, Options: queue.Options{EnableHlcOrdering: true},
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		b.Fatal(err)
	}
	return db, q, wall
}

// BenchmarkEnqueueByPartitions times single-job enqueues, one after the
// other, into a log of 2, 16 and 56 partitions (a year of weeks): every
// lookup by job id, such as an enqueue's duplicate check, probes each
// partition. Run with -benchtime 2000x; compare jobs/s within one run.
func BenchmarkEnqueueByPartitions(b *testing.B) {
	for _, n := range []int{2, 16, 56} {
		b.Run(fmt.Sprintf("partitions=%d", n), func(b *testing.B) {
			ctx := context.Background()
			_, q, _ := benchLog(b, n, 7*24*time.Hour)
			b.ResetTimer()
			for i := range b.N {
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkDropArchived times dropping 50,000 archived entries of one
// day: as a whole partition, and as rows deleted (another tenant's entry
// shares the partition), and reports the log's size on disk afterwards.
// The time includes what every drop does besides (the jobs' state
// deleted, their ids kept in archived_jobs). Run with -benchtime 1x.
func BenchmarkDropArchived(b *testing.B) {
	const entries = 50_000
	for _, shared := range []bool{false, true} {
		name := "whole_partition"
		if shared {
			name = "deleted_rows"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db, q, wall := benchLog(b, 3, 24*time.Hour)
			jobs := make([]queue.Job, 1000)
			for done := 0; done < entries; done += len(jobs) {
				for i := range jobs {
					jobs[i] = queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, done+i))}
				}
				if _, err := q.EnqueueMany(ctx, jobs); err != nil {
					b.Fatal(err)
				}
			}
			if shared {
				if _, err := q.Enqueue(ctx, queue.Job{TenantID: "other", Kind: "k", Payload: []byte(`{}`)}); err != nil {
					b.Fatal(err)
				}
			}
			wall.Advance(24 * time.Hour) // the next entry, the chain's first retained one, is in the next partition
			if _, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(`{"last":true}`)}); err != nil {
				b.Fatal(err)
			}
			if _, err := db.Pool.Exec(ctx, `UPDATE scheduler.job_state SET status = 'succeeded'`); err != nil {
				b.Fatal(err)
			}
			k := chain.Key{TenantID: "acme"}
			var last []byte
			var lastHLC string
			if err := db.Pool.QueryRow(ctx, `SELECT link, t_hlc FROM scheduler.scheduler_log WHERE tenant_id = 'acme' AND chain_pos = $1`, entries-1).
				Scan(&last, &lastHLC); err != nil {
				b.Fatal(err)
			}
			a := &driver.ChainArchive{Key: k, StartPos: 0, EndPos: entries, LastTHLC: lastHLC, Checkpoint: []byte("checkpoint\n"), ArchivedAt: time.Now()}
			copy(a.LastLink[:], last)
			as := db.AuditStore()
			if err := as.RecordArchive(ctx, a); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			res, err := as.DropArchived(ctx, driver.DropParams{Key: k, StartPos: 0, Now: time.Now()})
			b.StopTimer()
			if err != nil || res.Entries != entries || (res.PartitionsDropped == 0) == !shared {
				b.Fatalf("drop: %+v, %v", res, err)
			}
			b.ReportMetric(b.Elapsed().Seconds(), "drop_s")
			// What the log takes on disk after the drop: a dropped partition
			// gives its space back at once; deleted rows stay until vacuum
			// (and vacuum keeps the space for the table's reuse).
			var bytes int64
			if err := db.Pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits
				WHERE inhparent = 'scheduler.scheduler_log'::regclass`).Scan(&bytes); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(bytes)/(1<<20), "log_MiB_after")
		})
	}
}
