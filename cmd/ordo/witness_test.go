package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/witnesstest"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/postgres"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// lockedLog is a log sink the checkpointer's goroutines may share.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// witnessTestDB is ordo's database in the witness test, on either backend.
type witnessTestDB struct {
	store.DB
	t     *testing.T
	queue *queue.Queue
}

func openWitnessTestDB(t *testing.T, url string) *witnessTestDB {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenMigrated(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	wall := hlc.NewManualClock(1_704_067_200_000)
	clock, err := hlc.New(ctx, hlc.Config{Node: "node-a", Wall: wall, Store: db.HLCState()})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Options: queue.Options{EnableHlcOrdering: true},
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	return &witnessTestDB{DB: db, t: t, queue: q}
}

// enqueue appends n jobs to acme/"" with idempotency keys prefix0 ..
// prefix<n-1>.
func (d *witnessTestDB) enqueue(prefix string, n int) []queue.EnqueueResult {
	d.t.Helper()
	var jobs []queue.Job
	for i := range n {
		jobs = append(jobs, queue.Job{TenantID: "acme", Kind: "email.send", Payload: []byte(fmt.Sprintf(`{"p":%q,"n":%d}`, prefix, i)), IdempotencyKey: fmt.Sprint(prefix, i)})
	}
	res, err := d.queue.EnqueueMany(context.Background(), jobs)
	if err != nil {
		d.t.Fatal(err)
	}
	return res
}

// exec runs one statement written for PostgreSQL ($n parameters, tables
// as {s}name) on either backend.
func (d *witnessTestDB) exec(query string, args ...any) {
	d.t.Helper()
	ctx := context.Background()
	var err error
	switch db := d.DB.(type) {
	case *postgres.DB:
		_, err = db.Pool.Exec(ctx, strings.ReplaceAll(query, "{s}", "scheduler."), args...)
	case *sqlite.DB:
		_, err = db.SQL.ExecContext(ctx, strings.ReplaceAll(strings.ReplaceAll(query, "{s}", ""), "$", "?"), args...)
	default:
		err = fmt.Errorf("unknown backend %T", d.DB)
	}
	if err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
}

// forge edits entry pos's payload and recomputes every later link and
// the head, as a forger with write access would, then drops the stored
// tree and checkpoints, so that the checkpointer rebuilds the tree from
// the forged entries and signs it: a rewritten history with a valid
// signature, which only a witness (or a kept checkpoint) exposes.
func (d *witnessTestDB) forge(pos int64) {
	d.t.Helper()
	ctx := context.Background()
	k := chain.Key{TenantID: "acme"}
	var es []driver.Located
	err := d.AuditStore().Scan(ctx, driver.ScanParams{Key: k, From: 0, To: -1}, func(e *driver.LogEntry) error {
		var l driver.Located
		l.Pos, l.JobID, l.THLC = e.Pos, e.JobID, string(e.THLC)
		copy(l.PayloadHash[:], e.PayloadHash)
		copy(l.PrevLink[:], e.PrevLink)
		copy(l.Link[:], e.Link)
		es = append(es, l)
		return nil
	})
	if err != nil {
		d.t.Fatal(err)
	}
	payload := `{"n":"forged"}`
	ph, err := chain.PayloadHash([]byte(payload))
	if err != nil {
		d.t.Fatal(err)
	}
	d.exec(`UPDATE {s}scheduler_log SET payload = $1 WHERE job_id = $2`, payload, es[pos].JobID.String())
	es[pos].PayloadHash = ph
	prev := es[pos].PrevLink
	for i := pos; i < int64(len(es)); i++ {
		l, err := chainLink(prev, es[i])
		if err != nil {
			d.t.Fatal(err)
		}
		d.exec(`UPDATE {s}scheduler_log SET payload_hash = $1, prev_link = $2, link = $3 WHERE job_id = $4`,
			es[i].PayloadHash[:], nullIfZero(prev), l[:], es[i].JobID.String())
		prev = l
	}
	d.exec(`UPDATE {s}chain_heads SET last_link = $1 WHERE tenant_id = 'acme'`, prev[:])
	for _, table := range []string{"chain_tree_hashes", "chain_trees", "chain_checkpoints"} {
		d.exec(`DELETE FROM {s}` + table)
	}
}

// TestLitewitnessCosignsAndRefusesARewrittenHistory runs ordo's
// checkpointer, on both backends, against a real litewitness: cosigned
// checkpoints as the chain grows, ordo verify and proof check holding
// them to the witness's key, a rewritten history refused, and a witness
// that is down not stopping enqueues or checkpoints.
func TestLitewitnessCosignsAndRefusesARewrittenHistory(t *testing.T) {
	testdb.EachBackend(t, testLitewitness)
}

func testLitewitness(t *testing.T, dbURL string) {
	ctx := context.Background()
	w := witnesstest.Start(t)
	dir := t.TempDir()
	db := openWitnessTestDB(t, dbURL)
	db.enqueue("k", 5)
	prefix := filepath.Join(dir, "node")
	if out, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", prefix); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	pub := prefix + ".pub"

	// Register ordo's log the way docs/audit.md tells operators to.
	out, code := runAuditCLI(t, "witness", "log-key", "--key", pub, "--tenant", "acme")
	m := regexp.MustCompile(`^origin (\S+)\nkey (\S+)\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != "ordo/acme/" || !strings.HasPrefix(m[2], "ordo/acme/+") {
		t.Fatalf("witness log-key: %d %q", code, out)
	}
	w.Register(t, m[1], m[2])

	priv, err := readPrivateKey(prefix + ".key")
	if err != nil {
		t.Fatal(err)
	}
	wkey, err := audit.ParseWitnessKey(w.VKey)
	if err != nil {
		t.Fatal(err)
	}
	met, err := metrics.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	submissions := func(result string) float64 {
		return testutil.ToFloat64(met.WitnessSubmissions.WithLabelValues(w.URL, result))
	}
	var logs lockedLog
	cp := &audit.Checkpointer{
		Store: db.AuditStore(), Key: priv, Holder: "node-a",
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Witnesses:    []*audit.Witness{{URL: w.URL, Key: wkey}},
		Cosignatures: audit.CosignatureStoreOf(db.AuditStore()),
		WitnessObserver: func(witness, result string) {
			met.WitnessSubmissions.WithLabelValues(witness, result).Inc()
		},
	}
	k := chain.Key{TenantID: "acme"}
	cosigned := func(size int64) []byte {
		t.Helper()
		cps, err := db.AuditStore().Checkpoints(ctx, k, 1)
		if err != nil || len(cps) == 0 || cps[0].Size != size {
			t.Fatalf("latest checkpoint: %+v, %v; want size %d", cps, err, size)
		}
		msg, err := audit.WithCosignatures(ctx, audit.CosignatureStoreOf(db.AuditStore()), cps[0])
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	round := func() audit.RunResult {
		t.Helper()
		res, err := cp.RunOnce(ctx)
		if err != nil {
			t.Fatalf("checkpointer: %v\n%s", err, logs.String())
		}
		return res
	}

	// Size 5, the witness's first tree head of this log (old 0).
	round()
	if n, problems := audit.CountCosignatures(cosigned(5), []*audit.WitnessKey{wkey}); n != 1 || submissions(audit.WitnessCosigned) != 1 {
		t.Fatalf("size 5: %d cosignatures (%v), metric %v\n%s", n, problems, submissions(audit.WitnessCosigned), logs.String())
	}
	// Size 12: from the witness's size 5, with a consistency proof.
	db.enqueue("k", 12)
	round()
	cp12 := cosigned(12)
	if n, problems := audit.CountCosignatures(cp12, []*audit.WitnessKey{wkey}); n != 1 || submissions(audit.WitnessCosigned) != 2 {
		t.Fatalf("size 12: %d cosignatures (%v)\n%s", n, problems, logs.String())
	}
	if size, err := audit.CosignatureStoreOf(db.AuditStore()).WitnessedSize(ctx, k, wkey.KeyID()); err != nil || size != 12 {
		t.Fatalf("witnessed size %d, %v; want 12", size, err)
	}
	// The node key still verifies the checkpoint, witnesses and all.
	if _, _, err := audit.OpenCheckpoint(cp12, priv.Public()); err != nil {
		t.Fatalf("the cosigned checkpoint no longer opens with the node key: %v\n%s", err, cp12)
	}

	// The auditor's commands.
	otherSigner, err := torchwood.NewCosignatureSigner(witnesstest.Name, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := otherSigner.Verifier().String()
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"--witness-key", w.VKey, "--min-witnesses", "1"}, 0},
		{[]string{"--witness-key", w.VKey}, 0},
		{[]string{"--witness-key", wrongKey, "--min-witnesses", "1"}, 1},
		{[]string{"--witness-key", w.VKey, "--min-witnesses", "2"}, 1},
		{[]string{"--witness-key", "not-a-key"}, 2},
		{[]string{"--min-witnesses", "1"}, 2},
	} {
		args := append([]string{"--db", dbURL, "verify", "--tenant", "acme", "--key", pub}, c.args...)
		if out, code := runAuditCLI(t, args...); code != c.code {
			t.Errorf("ordo %v: exit %d, want %d\n%s", args, code, c.code, out)
		}
	}
	jobs := db.enqueue("k", 12)
	proofFile := filepath.Join(dir, "incl.json")
	if out, code := runAuditCLI(t, "--db", dbURL, "proof", "inclusion", "--job", jobs[3].JobID.String(), "-o", proofFile); code != 0 {
		t.Fatalf("proof inclusion: %d %s", code, out)
	}
	grow := filepath.Join(dir, "grow.json")
	if out, code := runAuditCLI(t, "--db", dbURL, "proof", "consistency", "--tenant", "acme", "--from", "5", "-o", grow); code != 0 {
		t.Fatalf("proof consistency: %d %s", code, out)
	}
	for _, c := range []struct {
		file string
		args []string
		code int
	}{
		{proofFile, []string{"--witness-key", w.VKey, "--min-witnesses", "1"}, 0},
		{grow, []string{"--witness-key", w.VKey, "--min-witnesses", "1"}, 0},
		{proofFile, []string{"--witness-key", wrongKey, "--min-witnesses", "1"}, 1},
		{proofFile, []string{"--witness-key", w.VKey, "--min-witnesses", "2"}, 1},
	} {
		args := append([]string{"proof", "check", "--key", pub, c.file}, c.args...)
		if out, code := runAuditCLI(t, args...); code != c.code {
			t.Errorf("ordo %v: exit %d, want %d\n%s", args, code, c.code, out)
		}
	}

	// ordo forgets what the witness cosigned (its rows deleted): it
	// submits from size 0, the witness answers 409 with its size, 12, and
	// ordo retries from there, with a consistency proof from 12 to 13.
	db.exec(`DELETE FROM {s}chain_cosignatures`)
	db.enqueue("forgotten-", 1)
	round()
	if n, problems := audit.CountCosignatures(cosigned(13), []*audit.WitnessKey{wkey}); n != 1 || submissions(audit.WitnessCosigned) != 3 {
		t.Fatalf("size 13 after a 409: %d cosignatures (%v)\n%s", n, problems, logs.String())
	}
	genuine, _, err := audit.OpenCheckpoint(cosigned(13), priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	wantState := fmt.Sprintf(`"origin":"ordo/acme/","size":13,"root_hash":"%s"`, base64.StdEncoding.EncodeToString(genuine.Root[:]))
	if st := w.Logs(t); !strings.Contains(st, wantState) {
		t.Fatalf("the witness's state %s, want %s", st, wantState)
	}

	// A rewritten history: entry 2 forged and every later link
	// recomputed, the stored tree and checkpoints dropped so that ordo
	// rebuilds the tree from the forged entries and signs it.
	db.forge(2)
	db.enqueue("after-rewrite-", 2)
	res := round()
	if len(res.Checkpoints) != 1 || res.Checkpoints[0].Size != 15 {
		t.Fatalf("after the rewrite ordo signed %+v, want size 15 (the test's premise)", res.Checkpoints)
	}
	if submissions(audit.WitnessInconsistent) != 1 || !strings.Contains(logs.String(), "level=ERROR") ||
		!strings.Contains(logs.String(), "result="+audit.WitnessInconsistent) {
		t.Fatalf("the witness's refusal: metric %v\n%s", submissions(audit.WitnessInconsistent), logs.String())
	}
	if n, _ := audit.CountCosignatures(cosigned(15), []*audit.WitnessKey{wkey}); n != 0 {
		t.Fatalf("the rewritten checkpoint carries %d cosignatures", n)
	}
	// The witness still holds the genuine tree.
	if st := w.Logs(t); !strings.Contains(st, wantState) {
		t.Fatalf("after the refusal the witness's state is %s, want %s", st, wantState)
	}
	if out, code := runAuditCLI(t, "--db", dbURL, "verify", "--tenant", "acme", "--witness-key", w.VKey); code != 1 {
		t.Fatalf("verify --witness-key of the rewritten chain: exit %d, want 1\n%s", code, out)
	}

	// A witness that is down: enqueues and checkpoints go on, the
	// failure is counted.
	w.Stop()
	more := db.enqueue("witness-down-", 2)
	if len(more) != 2 || more[1].Deduplicated {
		t.Fatalf("enqueue with the witness down: %d results", len(more))
	}
	res = round()
	if len(res.Checkpoints) != 1 || res.Checkpoints[0].Size != 17 || submissions(audit.WitnessUnreachable) != 1 {
		t.Fatalf("with the witness down: signed %+v, unreachable %v\n%s", res.Checkpoints, submissions(audit.WitnessUnreachable), logs.String())
	}
}
