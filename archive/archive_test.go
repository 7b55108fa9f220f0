package archive_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/archive"
	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/offline"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store"
)

// fixture is one backend with a queue, a manual clock and the log's key.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	as    driver.AuditStore
	q     *queue.Queue
	wall  *hlc.ManualClock
	now   func() time.Time
	key   *audit.PrivateKey
	chain chain.Key
	n     int
}

func newFixture(t *testing.T, url string) *fixture {
	ctx := context.Background()
	priv, _, err := audit.GenerateKey(rand.Reader, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	db := testdb.OpenMigrated(t, store.Open, url)
	clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a", Store: db.HLCState()})
	now := func() time.Time { return time.UnixMilli(wall.UnixMilli()).UTC() }
	m, _ := metrics.New(nil)
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, Now: now, Metrics: m, Options: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ctx: ctx, as: db.AuditStore(), q: q, wall: wall, now: now, key: key, chain: chain.Key{TenantID: "acme", PartitionKey: "p"}}
}

// enqueue adds n jobs to the chain and signs a checkpoint of it.
func (f *fixture) enqueue(n int) {
	f.t.Helper()
	var jobs []queue.Job
	for range n {
		jobs = append(jobs, queue.Job{TenantID: f.chain.TenantID, PartitionKey: f.chain.PartitionKey, Kind: "k", Payload: []byte(fmt.Sprintf(`{"i":%d}`, f.n))})
		f.n++
	}
	if _, err := f.q.EnqueueMany(f.ctx, jobs); err != nil {
		f.t.Fatal(err)
	}
	if _, err := (&audit.Checkpointer{Store: f.as, Key: f.key, Holder: "node-a", Now: f.now}).RunOnce(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// work completes the n oldest jobs.
func (f *fixture) work(n int) {
	f.t.Helper()
	for n > 0 {
		ls, err := f.q.Dequeue(f.ctx, queue.DequeueOptions{Limit: min(n, 500)})
		if err != nil || len(ls) == 0 {
			f.t.Fatalf("dequeue: %d leases, %v", len(ls), err)
		}
		for _, l := range ls {
			if err := f.q.Complete(f.ctx, l); err != nil {
				f.t.Fatal(err)
			}
		}
		n -= len(ls)
	}
}

func (f *fixture) write(dir string, before int64, at time.Time) *archive.Manifest {
	f.t.Helper()
	m, err := archive.Write(f.ctx, archive.WriteParams{Store: f.as, Key: f.key, Chain: f.chain, Before: before, BeforeTime: at, Dir: dir, Now: f.now()})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) verify(archived map[chain.Key]*audit.ArchivedPrefix) *audit.ChainResult {
	f.t.Helper()
	v := &audit.Verifier{Store: f.as, Key: f.key.Public(), Archived: archived}
	r, err := v.VerifyChain(f.ctx, f.chain)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func openAll(t *testing.T, dirs ...string) []*archive.Archive {
	t.Helper()
	var out []*archive.Archive
	for _, d := range dirs {
		a, err := archive.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// A chain archived in three pieces, two of them dropped from the
// database, verifies from its genesis across the archives and the
// database, and without the archives through the database's record; the
// chain goes on after the drop; a job not finished keeps its piece in the
// database; an archive missing or changed is refused.
func TestArchiveThreePieces(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, url string) {
		f := newFixture(t, url)
		dir := t.TempDir()
		d1, d2, d3 := filepath.Join(dir, "a1"), filepath.Join(dir, "a2"), filepath.Join(dir, "a3")

		f.enqueue(300)
		f.wall.Advance(time.Hour)
		f.enqueue(300)
		f.wall.Advance(time.Hour)
		third := f.now()
		f.enqueue(100)
		f.work(650)

		if err := f.as.RecordArchive(f.ctx, &driver.ChainArchive{Key: f.chain, StartPos: 5, EndPos: 9}); !errors.Is(err, driver.ErrArchiveRange) {
			t.Fatalf("recording a first archive that does not start at the genesis: %v", err)
		}
		if _, err := f.as.DropArchived(f.ctx, driver.DropParams{Key: f.chain, StartPos: 0, Now: f.now()}); !errors.Is(err, driver.ErrArchiveRange) {
			t.Fatalf("dropping an archive never written: %v", err)
		}
		// Piece 1 by position, piece 2 by time: the entries enqueued
		// before the third batch.
		if m := f.write(d1, 250, time.Time{}); m.StartPos != 0 || m.EndPos != 250 {
			t.Fatalf("piece 1: [%d, %d)", m.StartPos, m.EndPos)
		}
		if m := f.write(d2, 0, third); m.StartPos != 250 || m.EndPos != 600 {
			t.Fatalf("piece 2: [%d, %d)", m.StartPos, m.EndPos)
		}
		if _, err := archive.Drop(f.ctx, f.as, d2, f.key.Public(), f.now()); !errors.Is(err, driver.ErrArchiveRange) {
			t.Fatalf("dropping piece 2 before piece 1: %v", err)
		}
		for _, d := range []string{d1, d2} {
			res, err := archive.Drop(f.ctx, f.as, d, f.key.Public(), f.now())
			if err != nil {
				t.Fatal(err)
			}
			if res.Entries == 0 || res.Jobs != res.Entries {
				t.Fatalf("drop %s: %+v", d, res)
			}
		}
		if _, err := archive.Drop(f.ctx, f.as, d1, f.key.Public(), f.now()); !errors.Is(err, driver.ErrArchiveRange) {
			t.Fatalf("dropping piece 1 twice: %v", err)
		}
		var firstJob uuid.UUID
		if err := openAll(t, d1)[0].Entries(func(es []offline.Entry) error {
			if firstJob == uuid.Nil {
				firstJob = es[0].JobID
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.q.Get(f.ctx, firstJob); !errors.Is(err, driver.ErrJobNotFound) {
			t.Fatalf("a dropped entry's job: %v, want ErrJobNotFound", err)
		}

		// A job whose entry was dropped is still not appended again: the
		// enqueue answers with its archived entry.
		again, err := f.q.Enqueue(f.ctx, queue.Job{TenantID: f.chain.TenantID, PartitionKey: f.chain.PartitionKey, Kind: "k", Payload: []byte(`{"i":0}`)})
		if err != nil || !again.Deduplicated || again.JobID != firstJob || again.THLC == "" {
			t.Fatalf("enqueueing a dropped entry's job again: %+v, %v", again, err)
		}

		// The chain goes on after the drop.
		f.enqueue(50)
		if m := f.write(d3, 680, time.Time{}); m.StartPos != 600 || m.EndPos != 680 {
			t.Fatalf("piece 3: [%d, %d)", m.StartPos, m.EndPos)
		}
		if _, err := archive.Drop(f.ctx, f.as, d3, f.key.Public(), f.now()); !errors.Is(err, driver.ErrArchiveUnfinished) {
			t.Fatalf("dropping a piece with unfinished jobs: %v", err)
		}

		archived, err := archive.VerifyAll(openAll(t, d3, d1, d2), f.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		r := f.verify(archived)
		if !r.Valid || r.ArchivedEntries != 600 || r.EntriesChecked != 150 || r.CheckpointsChecked == 0 {
			t.Fatalf("with the archives: %+v", r)
		}
		if r := f.verify(nil); !r.Valid || r.ArchivedEntries != 600 || r.EntriesChecked != 150 {
			t.Fatalf("with the database's record only: %+v", r)
		}
		round, err := (&audit.IncrementalVerifier{Store: f.as, Key: f.key.Public(), Now: f.now}).RunOnce(f.ctx)
		if err != nil || !round.Valid {
			t.Fatalf("periodic verification after the drop: %+v, %v", round, err)
		}

		// The chain's last entry stays: the next append links to it.
		f.work(100)
		d4 := filepath.Join(dir, "a4")
		if _, err := archive.Drop(f.ctx, f.as, d3, f.key.Public(), f.now()); err != nil {
			t.Fatal(err)
		}
		f.write(d4, 750, time.Time{})
		if _, err := archive.Drop(f.ctx, f.as, d4, f.key.Public(), f.now()); !errors.Is(err, driver.ErrArchiveRange) || !strings.Contains(err.Error(), "last entry") {
			t.Fatalf("dropping the chain's last entry: %v", err)
		}
		archived, err = archive.VerifyAll(openAll(t, d1, d2, d3, d4), f.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if r := f.verify(archived); !r.Valid || r.ArchivedEntries != 680 || r.EntriesChecked != 70 {
			t.Fatalf("four archives, three dropped: %+v", r)
		}

		// The tiles: the hash tiles of dropped entries are still served
		// (proofs go on), their entry bundles are not.
		tiles := audit.NewTiles(f.as, 0)
		if b, err := tiles.Tile(f.ctx, f.chain, tlog.Tile{H: 8, L: 0, N: 0, W: 256}); err != nil || len(b) != 256*32 {
			t.Fatalf("a hash tile of dropped entries: %d bytes, %v", len(b), err)
		}
		if _, err := tiles.Tile(f.ctx, f.chain, tlog.Tile{H: 8, L: -1, N: 0, W: 256}); !errors.Is(err, audit.ErrNoTile) {
			t.Fatalf("an entry bundle of dropped entries: %v", err)
		}

		// Piece 2 missing: refused, naming the gap.
		if _, err := archive.VerifyAll(openAll(t, d1, d3), f.key.Public()); !errors.Is(err, archive.ErrInvalid) || !strings.Contains(err.Error(), "chain_pos 250 to 599") {
			t.Fatalf("without piece 2: %v", err)
		}
		// A changed entry: the entries file no longer matches its manifest.
		changed := filepath.Join(dir, "changed")
		copyDir(t, d1, changed)
		entries := filepath.Join(changed, archive.EntriesFile)
		b, _ := os.ReadFile(entries)
		if err := os.WriteFile(entries, []byte(strings.Replace(string(b), `{"i":7}`, `{"i":8}`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := archive.Open(changed); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("a changed entries file: %v", err)
		}
		// ... and with the manifest's hash changed to match, the entry's
		// own checks refuse it, naming it.
		b, _ = os.ReadFile(entries)
		sum := sha256.Sum256(b)
		manifest := filepath.Join(changed, archive.ManifestFile)
		mb, _ := os.ReadFile(manifest)
		var m map[string]any
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		m["entries_sha256"] = hex.EncodeToString(sum[:])
		mb, _ = json.Marshal(m)
		if err := os.WriteFile(manifest, mb, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := archive.VerifyAll(openAll(t, changed, d2, d3), f.key.Public()); !errors.Is(err, archive.ErrInvalid) || !strings.Contains(err.Error(), "entry 7 ") {
			t.Fatalf("a rewritten entry: %v", err)
		}
		// Another chain's key does not verify the archives.
		other, _, _ := audit.GenerateKey(rand.Reader, "node-a")
		ok, _ := audit.ParsePrivateKey(other)
		if _, err := archive.VerifyAll(openAll(t, d1, d2, d3), ok.Public()); !errors.Is(err, archive.ErrInvalid) {
			t.Fatalf("archives checked with another key: %v", err)
		}
	})
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
