package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// TestFullVerifyFindsWhatRoundsDoNotReread: an entry changed before the
// position the periodic rounds have verified is not read again by them
// (they stay valid), and `ordo verify`, the full check on demand, finds
// it and exits 1.
func TestFullVerifyFindsWhatRoundsDoNotReread(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db, err := store.OpenMigrated(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wall := hlc.NewManualClock(1_704_067_200_000)
		clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState()})
		if err != nil {
			t.Fatal(err)
		}
		q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true}})
		if err != nil {
			t.Fatal(err)
		}
		enqueue := func(from, n int) []queue.EnqueueResult {
			var jobs []queue.Job
			for i := from; i < from+n; i++ {
				jobs = append(jobs, queue.Job{TenantID: "acme", Kind: "email.send", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			}
			res, err := q.EnqueueMany(ctx, jobs)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		v := &audit.IncrementalVerifier{Store: db.AuditStore(), Leader: db, Holder: "node-a"}
		round := func(want int64) {
			t.Helper()
			r, err := v.RunOnce(ctx)
			if err != nil || !r.Valid || r.EntriesChecked != want {
				t.Fatalf("round: %+v, %v; want valid with %d entries read", r, err, want)
			}
		}
		first := enqueue(0, 8)
		round(8)
		var n int64
		switch d := db.(type) {
		case *postgres.DB:
			tag, e := d.Pool.Exec(ctx, `UPDATE scheduler.scheduler_log SET payload = '{"n":999}' WHERE job_id = $1`, first[2].JobID)
			n, err = tag.RowsAffected(), e
		case *sqlite.DB:
			res, e := d.SQL.ExecContext(ctx, `UPDATE scheduler_log SET payload = '{"n":999}' WHERE job_id = ?1`, first[2].JobID.String())
			if e == nil {
				n, e = res.RowsAffected()
			}
			err = e
		}
		if err != nil || n != 1 {
			t.Fatalf("tampering: %d rows, %v", n, err)
		}
		enqueue(8, 4)
		round(4)
		out, code := runAuditCLI(t, "--db", url, "verify", "--tenant", "acme")
		if code != 1 || !strings.Contains(out, "payload_hash_mismatch") || !strings.Contains(out, first[2].JobID.String()) {
			t.Fatalf("ordo verify after tampering before the verified position: exit %d\n%s", code, out)
		}
	})
}
