package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/store/postgres"
)

// BenchmarkIncrementalRound1M times a periodic round over the last 1,000
// entries of a chain of 1,001,000 on PostgreSQL (the first 1,000,000
// verified by an earlier round), an idle round (nothing new), and the
// full verification of the same chain, best of three each:
//
//	scripts/with-postgres.sh go test -run '^$' -bench IncrementalRound1M -benchtime 1x ./audit/
func BenchmarkIncrementalRound1M(b *testing.B) {
	const verified, fresh = 1_000_000, 1_000
	ctx := context.Background()
	db := testdb.OpenMigrated(b, postgres.Open, testdb.NewDatabase(b))
	k := chain.Key{TenantID: "bench", PartitionKey: "p"}
	fillChain(b, db, k, verified+fresh)
	store := db.AuditStore()
	v := &audit.IncrementalVerifier{Store: store, MaxRoundEntries: verified}
	if r, err := v.RunOnce(ctx); err != nil || !r.Valid || r.EntriesChecked != verified {
		b.Fatalf("catching up to %d: %+v, %v", verified, r, err)
	}
	ps, err := store.ChainVerifications(ctx, "bench")
	if err != nil || len(ps) != 1 || ps[0].VerifiedSize != verified {
		b.Fatalf("progress: %+v, %v", ps, err)
	}
	atVerified := ps[0]
	v.MaxRoundEntries = 0
	round := func(want int64) time.Duration {
		t0 := time.Now()
		r, err := v.RunOnce(ctx)
		d := time.Since(t0)
		if err != nil || !r.Valid || r.EntriesChecked != want {
			b.Fatalf("round: %+v, %v; want %d entries", r, err, want)
		}
		return d
	}
	full := func() time.Duration {
		t0 := time.Now()
		r, err := (&audit.Verifier{Store: store, Workers: benchWorkers}).VerifyChain(ctx, k)
		d := time.Since(t0)
		if err != nil || !r.Valid || r.EntriesChecked != verified+fresh {
			b.Fatalf("full verification: %+v, %v", r, err)
		}
		return d
	}
	b.ResetTimer()
	bestRound, bestIdle, bestFull := time.Duration(1<<62), time.Duration(1<<62), time.Duration(1<<62)
	for range b.N {
		for range 3 {
			if err := store.SaveChainVerification(ctx, atVerified); err != nil { // back to 1,000,000 verified
				b.Fatal(err)
			}
			bestRound = min(bestRound, round(fresh))
			bestIdle = min(bestIdle, round(0))
			bestFull = min(bestFull, full())
		}
	}
	b.StopTimer()
	b.ReportMetric(bestRound.Seconds()*1000, "round_ms")
	b.ReportMetric(bestIdle.Seconds()*1000, "idle_round_ms")
	b.ReportMetric(bestFull.Seconds(), "full_s")
	b.Logf("round over %d new entries of %d: %v; idle round %v; full verification %v", fresh, verified+fresh,
		bestRound.Round(time.Microsecond), bestIdle.Round(time.Microsecond), bestFull.Round(time.Millisecond))
}
