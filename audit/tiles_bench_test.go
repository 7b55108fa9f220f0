package audit_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// BenchmarkTiles1M serves every tile of a 1,000,000-entry chain on SQLite
// (the chain's whole tlog-tiles log: 3,907 entry bundles, 3,907 level-0
// tiles and the 17 above) and, in the same run, reads the chain's entries
// once without checking them; alternating, twice each, it reports the best
// time of each and their ratio. The tiles are served cold (no tile cached)
// and then again from audit.Tiles' cache of full tiles.
//
//	go test -run '^$' -bench Tiles1M -benchtime 1x ./audit/
//
// read_s is Store.Scan over every entry (what reading the entries once
// costs: the verifier's reader, nothing done with the rows); serve_s
// serves every tile through audit.Tiles with no cache; cached_s serves
// them all again with every full tile cached.
func BenchmarkTiles1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ORDO_BENCH_TILES_ENTRIES")); err == nil && v > 0 {
		n = v // a smaller chain, for profiling
	}
	ctx := context.Background()
	db := testdb.OpenMigrated(b, sqlite.Open, testdb.SQLitePath(b))
	k := chain.Key{TenantID: "bench", PartitionKey: "p"}
	start := time.Now()
	fillSQLiteChain(b, db, k, n)
	b.Logf("inserted %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	store := db.AuditStore()

	priv, _, err := audit.GenerateKey(rand.Reader, "bench-node")
	if err != nil {
		b.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	cp := &audit.Checkpointer{Store: store, Key: key, Holder: "bench", Chunk: 100_000}
	if res, err := cp.RunOnce(ctx); err != nil || len(res.Checkpoints) != 1 || res.Checkpoints[0].Size != int64(n) {
		b.Fatalf("checkpointing: %+v, %v", res, err)
	}
	b.Logf("hashed and signed the tree in %v", time.Since(start).Round(time.Millisecond))

	// Every tile of the tree of size n, and every entry bundle.
	all := tlog.NewTiles(audit.TileHeight, 0, int64(n))
	for _, t := range all {
		if t.L == 0 {
			t.L = -1
			all = append(all, t)
		}
	}

	read := func() time.Duration {
		t0 := time.Now()
		count := 0
		if err := store.Scan(ctx, driver.ScanParams{Key: k, From: 0, To: -1}, func(*driver.LogEntry) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("scan: %d rows, %v", count, err)
		}
		return time.Since(t0)
	}
	serve := func(tiles *audit.Tiles) time.Duration {
		t0 := time.Now()
		bytes := 0
		for _, t := range all {
			data, err := tiles.Tile(ctx, k, t)
			if err != nil {
				b.Fatalf("%s: %v", audit.TilePath(t), err)
			}
			bytes += len(data)
		}
		d := time.Since(t0)
		if want := n*34 + (n+n/256+n/65536)*32; bytes != want {
			b.Fatalf("served %d bytes, want %d", bytes, want)
		}
		return d
	}
	read() // warm the page cache
	b.ResetTimer()
	bestR, bestS, bestC := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
	for range b.N {
		for range 2 {
			bestR = min(bestR, read())
			bestS = min(bestS, serve(audit.NewTiles(store, 0)))
			cached := audit.NewTiles(store, len(all))
			serve(cached)
			bestC = min(bestC, serve(cached))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(all)), "tiles")
	b.ReportMetric(bestR.Seconds(), "read_s")
	b.ReportMetric(bestS.Seconds(), "serve_s")
	b.ReportMetric(bestC.Seconds(), "cached_s")
	b.ReportMetric(bestS.Seconds()/bestR.Seconds(), "serve/read")
	b.Logf("%d tiles: served in %v (cached %v); the entries read once in %v: ratio %.2f", len(all), bestS.Round(time.Millisecond),
		bestC.Round(time.Millisecond), bestR.Round(time.Millisecond), bestS.Seconds()/bestR.Seconds())
}

// fillSQLiteChain writes a valid chain of n entries in one transaction,
// links computed in Go as the queue would, and its head.
func fillSQLiteChain(b *testing.B, db *sqlite.DB, k chain.Key, n int) {
	ctx := context.Background()
	const base = int64(1_704_067_200_000)
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link,
		created_at, chain_pos, node_id, kind, payload, priority, max_attempts, run_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'node-a', 'email.send', ?10, 0, 3, ?8)`)
	if err != nil {
		b.Fatal(err)
	}
	var prev chain.Hash
	var thlc string
	for i := range n {
		payload := fmt.Sprintf(`{"attempt":1,"n":%d,"template":"welcome","to":"user-%d@example.com"}`, i, i)
		ph, err := chain.PayloadHash([]byte(payload))
		if err != nil {
			b.Fatal(err)
		}
		id, err := chain.JobID(k.TenantID, k.PartitionKey, "email.send", "", ph)
		if err != nil {
			b.Fatal(err)
		}
		thlc = fmt.Sprintf("%013d-%06d-node-a", base+int64(i/1000), i%1000)
		link, err := chain.Link(prev, id, thlc, ph)
		if err != nil {
			b.Fatal(err)
		}
		var prevArg any
		if i > 0 {
			prevArg = prev[:]
		}
		if _, err := ins.ExecContext(ctx, k.TenantID, thlc, k.PartitionKey, id.String(), ph[:], prevArg, link[:], base, i, payload); err != nil {
			b.Fatal(err)
		}
		prev = link
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chain_heads (tenant_id, partition_key, last_link, last_t_hlc, entry_count, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)`, k.TenantID, k.PartitionKey, prev[:], thlc, n, base); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
