package audit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/postgres"
)

// BenchmarkVerify1M verifies a chain of 1,000,000 entries on PostgreSQL
// and, in the same run, reads the same rows without checking them, twice
// each, alternating; it reports the best time of each and their ratio.
//
//	scripts/with-postgres.sh go test -run '^$' -bench Verify1M -benchtime 1x ./audit/
//
// scan_s reads the rows through the same streaming reader the verifier
// uses (Store.Scan, binary rows, nothing done with them); plain_scan_s is
// the same query through pgx's ordinary typed Scan, what a hand-written
// reader would do.
var benchWorkers = func() int { n, _ := strconv.Atoi(os.Getenv("ORDO_BENCH_WORKERS")); return n }()

func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	ctx := context.Background()
	db := testdb.OpenMigrated(b, postgres.Open, testdb.NewDatabase(b))
	k := chain.Key{TenantID: "bench", PartitionKey: "p"}
	start := time.Now()
	fillChain(b, db, k, n)
	b.Logf("inserted %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	store := db.AuditStore()

	scan := func() time.Duration {
		t0 := time.Now()
		count := 0
		if err := store.Scan(ctx, driver.ScanParams{Key: k, From: 0, To: -1, WithPayload: true}, func(*driver.LogEntry) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("scan: %d rows, %v", count, err)
		}
		return time.Since(t0)
	}
	plainScan := func() time.Duration {
		t0 := time.Now()
		rows, err := db.Pool.Query(ctx, `SELECT seq_bigint, chain_pos, t_hlc, job_id, payload_hash, prev_link, link, kind, idempotency_key, payload
			FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 ORDER BY chain_pos`, k.TenantID, k.PartitionKey)
		if err != nil {
			b.Fatal(err)
		}
		var e struct {
			seq, pos              int64
			thlc, kind            string
			key                   *string
			id                    [16]byte
			ph, prev, link, pload []byte
		}
		count := 0
		_, err = pgx.ForEachRow(rows, []any{&e.seq, &e.pos, &e.thlc, &e.id, &e.ph, &e.prev, &e.link, &e.kind, &e.key, &e.pload}, func() error { count++; return nil })
		if err != nil || count != n {
			b.Fatalf("plain scan: %d rows, %v", count, err)
		}
		return time.Since(t0)
	}
	verify := func() time.Duration {
		t0 := time.Now()
		r, err := (&audit.Verifier{Store: store, Workers: benchWorkers}).VerifyChain(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		if !r.Valid || r.EntriesChecked != n {
			b.Fatalf("verify: valid=%v entries=%d issues=%v", r.Valid, r.EntriesChecked, r.Issues[:min(3, len(r.Issues))])
		}
		return d
	}
	scan() // warm the cache
	b.ResetTimer()
	bestV, bestS, bestP := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
	for range b.N {
		for range 2 {
			bestS = min(bestS, scan())
			bestV = min(bestV, verify())
			bestP = min(bestP, plainScan())
		}
	}
	b.StopTimer()
	b.ReportMetric(bestV.Seconds(), "verify_s")
	b.ReportMetric(bestS.Seconds(), "scan_s")
	b.ReportMetric(bestP.Seconds(), "plain_scan_s")
	b.ReportMetric(bestV.Seconds()/bestS.Seconds(), "verify/scan")
	b.ReportMetric(bestV.Seconds()/bestP.Seconds(), "verify/plain_scan")
	b.Logf("verify %v, scan %v (plain %v): ratio %.2f (%.2f)", bestV.Round(time.Millisecond), bestS.Round(time.Millisecond),
		bestP.Round(time.Millisecond), bestV.Seconds()/bestS.Seconds(), bestV.Seconds()/bestP.Seconds())
}

// fillChain writes a valid chain of n entries with COPY, links computed in
// Go as the queue would, and its head.
func fillChain(b *testing.B, db *postgres.DB, k chain.Key, n int) {
	ctx := context.Background()
	const base = int64(1_704_067_200_000)
	created := time.UnixMilli(base)
	var prev chain.Hash
	var last chain.Hash
	var lastTHLC string
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		payload := []byte(fmt.Sprintf(`{"attempt":1,"n":%d,"template":"welcome","to":"user-%d@example.com"}`, i, i))
		ph, err := chain.PayloadHash(payload)
		if err != nil {
			return nil, err
		}
		id, err := chain.JobID(k.TenantID, k.PartitionKey, "email.send", "", ph)
		if err != nil {
			return nil, err
		}
		thlc := fmt.Sprintf("%013d-%06d-node-a", base+int64(i/1000), i%1000)
		link, err := chain.Link(prev, id, thlc, ph)
		if err != nil {
			return nil, err
		}
		var prevArg any
		if i > 0 {
			prevArg = append([]byte(nil), prev[:]...)
		}
		row := []any{k.TenantID, thlc, k.PartitionKey, id, ph[:], prevArg, link[:], created, int64(i), "node-a", "email.send", string(payload), 0, 3, created, nil}
		prev, last, lastTHLC = link, link, thlc
		i++
		return row, nil
	})
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"scheduler", "scheduler_log"}, []string{"tenant_id", "t_hlc", "partition_key", "job_id",
		"payload_hash", "prev_link", "link", "created_at", "chain_pos", "node_id", "kind", "payload", "priority", "max_attempts", "run_at", "idempotency_key"}, src); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO scheduler.chain_heads (tenant_id, partition_key, last_link, last_t_hlc, entry_count) VALUES ($1, $2, $3, $4, $5)`,
		k.TenantID, k.PartitionKey, last[:], lastTHLC, n); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `VACUUM ANALYZE scheduler.scheduler_log`); err != nil {
		b.Fatal(err)
	}
}
