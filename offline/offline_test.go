package offline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/offline"
	"github.com/ordo-sched/ordo/queue"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).UnixMilli()

// openNode opens a queue with HLC ordering on url, as node, on a manual
// wall clock at wallMs.
func openNode(t *testing.T, url, node string, wallMs int64) (*queue.Queue, *hlc.ManualClock) {
	t.Helper()
	wall := hlc.NewManualClock(wallMs)
	q, err := ordo.Open(context.Background(), url, ordo.Config{Node: node, Hlc: queue.Options{EnableHlcOrdering: true}, Wall: wall})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q, wall
}

// offlineNode enqueues jobs on its own SQLite database, as a node cut off
// from the central one would, and exports them as a bundle.
func offlineNode(t *testing.T, node string, wallMs int64, jobs []queue.Job, key *audit.PrivateKey) []byte {
	t.Helper()
	ctx := context.Background()
	q, wall := openNode(t, testdb.SQLiteURL(t), node, wallMs)
	for _, j := range jobs {
		if _, err := q.Enqueue(ctx, j); err != nil {
			t.Fatal(err)
		}
		wall.Advance(7 * time.Millisecond)
	}
	b, err := offline.Export(ctx, q.Backend().AuditStore(), offline.ExportParams{Tenant: "acme", Now: time.UnixMilli(wallMs)})
	if err != nil {
		t.Fatal(err)
	}
	data, err := offline.Encode(ctx, b, key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func job(partition, kind string, n int) queue.Job {
	return queue.Job{TenantID: "acme", PartitionKey: partition, Kind: kind, Payload: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// centralEntries reads every entry of the tenant's chains, with its
// source, as comparable text.
func centralEntries(t *testing.T, q *queue.Queue) []string {
	t.Helper()
	ctx := context.Background()
	s := q.Backend().AuditStore()
	keys, err := s.Chains(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		rows, err := s.ExportEntries(ctx, driver.ExportParams{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			prev := "genesis"
			if !r.Entry.PrevLinkNull {
				prev = r.Entry.PrevLink.String()
			}
			src := "local"
			if s := r.Source; s != nil {
				src = fmt.Sprintf("from %s %s %s", s.Node, s.THLC, s.Link)
			}
			out = append(out, fmt.Sprintf("%q %d %s %s %s %s %s node %s priority %d run_at %d created_at %d %s", k.PartitionKey, r.Entry.Pos,
				r.Entry.THLC, r.JobID, r.Entry.PayloadHash, prev, r.Entry.Link, r.Node, r.Priority, r.RunAt.UnixMilli(), r.CreatedAt.UnixMilli(), src))
		}
	}
	return out
}

func decode(t *testing.T, name string, data []byte, keys ...*audit.PublicKey) *offline.Decoded {
	t.Helper()
	d, err := offline.Decode(context.Background(), name, data, keys, false)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Issue 18: two offline SQLite nodes with skewed clocks enqueue; their
// bundles, merged into PostgreSQL in both orders on two fresh databases by
// two different nodes, give identical chains that verify; a job both nodes
// enqueued is merged once; the central clock follows the bundles; a
// second import adds nothing; an imported job is then worked.
func TestMergeIsDeterministic(t *testing.T) {
	ctx := context.Background()
	priv, pub, err := audit.GenerateKey(nil, "field-b")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := audit.ParsePrivateKey(priv)
	verifier, _ := audit.ParsePublicKey(pub)

	a := offlineNode(t, "field-a", t0, []queue.Job{job("", "report", 1), job("eu", "report", 2), job("", "email", 3), job("", "report", 99)}, nil)
	// field-b's clock is 1.5 s ahead of field-a's.
	b := offlineNode(t, "field-b", t0+1500, []queue.Job{job("", "report", 4), job("eu", "email", 5), job("", "report", 99)}, signer)

	var chains [2][]string
	var centrals [2]*queue.Queue
	for i, order := range [][2]string{{"a", "b"}, {"b", "a"}} {
		q, _ := openNode(t, testdb.NewDatabase(t), fmt.Sprintf("central-%d", i+1), t0+60_000)
		centrals[i] = q
		files := map[string][]byte{"a": a, "b": b}
		var ds []*offline.Decoded
		for _, name := range order {
			ds = append(ds, decode(t, name+".bundle", files[name], verifier))
		}
		r, err := offline.Import(ctx, q, ds, offline.ImportOptions{})
		if err != nil {
			t.Fatalf("import %v: %v", order, err)
		}
		if r.Entries != 7 || r.Imported != 6 || r.Present != 1 {
			t.Errorf("import %v: %d entries, %d imported, %d present; want 7, 6, 1 (the job both nodes enqueued)", order, r.Entries, r.Imported, r.Present)
		}
		chains[i] = centralEntries(t, q)
		res, err := audit.Verify(ctx, q.Backend().AuditStore(), "acme")
		if err != nil || !res.Valid || res.EntriesChecked != 6 {
			t.Fatalf("verify after import %v: %+v, %v", order, res, err)
		}
		if n, err := offline.VerifySources(ctx, q.Backend().AuditStore(), "acme"); err != nil || n != 6 {
			t.Errorf("the merged entries against their offline chains: %d checked, %v; want 6, nil", n, err)
		}
		again, err := offline.Import(ctx, q, ds, offline.ImportOptions{})
		if err != nil || again.Imported != 0 || again.Present != 7 {
			t.Errorf("second import %v: %+v, %v; want nothing imported, 7 present", order, again, err)
		}
	}
	if strings.Join(chains[0], "\n") != strings.Join(chains[1], "\n") {
		t.Fatalf("the two imports differ:\n%s\n--- and ---\n%s", strings.Join(chains[0], "\n"), strings.Join(chains[1], "\n"))
	}
	if len(chains[0]) != 6 {
		t.Fatalf("central chains hold %d entries, want 6:\n%s", len(chains[0]), strings.Join(chains[0], "\n"))
	}

	// The central clock received the bundles' timestamps (field-b's are
	// the latest); a job enqueued now follows them.
	q := centrals[0]
	later, err := q.Enqueue(ctx, job("", "report", 100))
	if err != nil {
		t.Fatal(err)
	}
	if lt, _ := hlc.Parse(later.THLC); lt.Physical < t0+60_000 {
		t.Errorf("a central enqueue after the import got %s", later.THLC)
	}

	// Onto a chain that went on meanwhile: the merged entries follow its
	// head, named after their source nodes, and everything verifies.
	busy, _ := openNode(t, testdb.NewDatabase(t), "central-3", t0+60_000)
	head, err := busy.Enqueue(ctx, job("", "report", 50))
	if err != nil {
		t.Fatal(err)
	}
	r, err := offline.Import(ctx, busy, []*offline.Decoded{decode(t, "a", a), decode(t, "b", b, verifier)}, offline.ImportOptions{})
	if err != nil || r.Imported != 6 {
		t.Fatalf("import onto a busy chain: %+v, %v", r, err)
	}
	for _, x := range r.Results {
		if x.THLC <= head.THLC || !(strings.HasSuffix(x.THLC, "-field-a") || strings.HasSuffix(x.THLC, "-field-b")) {
			t.Errorf("merged entry %s got t_hlc %s; want one after the head %s naming its source node", x.JobID, x.THLC, head.THLC)
		}
	}
	if res, err := audit.Verify(ctx, busy.Backend().AuditStore(), "acme"); err != nil || !res.Valid || res.EntriesChecked != 7 {
		t.Fatalf("verify after importing onto a busy chain: %+v, %v", res, err)
	}
	if n, err := offline.VerifySources(ctx, busy.Backend().AuditStore(), "acme"); err != nil || n != 6 {
		t.Errorf("merged entries against their offline chains: %d, %v", n, err)
	}

	// An imported job is worked like any other.
	leases, err := q.Dequeue(ctx, queue.DequeueOptions{TenantID: "acme", Kinds: []string{"email"}, Limit: 10})
	if err != nil || len(leases) != 2 {
		t.Fatalf("dequeue of the imported email jobs: %d, %v", len(leases), err)
	}
	for _, l := range leases {
		if err := q.Complete(ctx, l); err != nil {
			t.Fatal(err)
		}
		if info, err := q.Get(ctx, l.JobID); err != nil || info.Status != queue.StatusSucceeded {
			t.Errorf("imported job %s after Complete: %v, %v", l.JobID, info.Status, err)
		}
	}
}

// Issue 18: a bundle with a tampered entry, or a bad signature, is refused
// whole and names the first bad entry; nothing is written. Force takes the
// entries before the bad one; it never overrides a signature.
func TestBadBundlesAreRefused(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, centralURL string) {
		ctx := context.Background()
		priv, pub, _ := audit.GenerateKey(nil, "field-a")
		signer, _ := audit.ParsePrivateKey(priv)
		verifier, _ := audit.ParsePublicKey(pub)
		_, otherPub, _ := audit.GenerateKey(nil, "someone-else")
		other, _ := audit.ParsePublicKey(otherPub)
		jobs := []queue.Job{job("", "report", 1), job("", "report", 2), job("", "report", 3)}
		plain := offlineNode(t, "field-a", t0, jobs, nil)
		signed := offlineNode(t, "field-a", t0, jobs, signer)
		q, _ := openNode(t, centralURL, "central", t0+60_000)

		var b offline.Bundle
		if err := json.Unmarshal(plain, &b); err != nil {
			t.Fatal(err)
		}
		b.Chains[0].Entries[1].Payload = json.RawMessage(`{"n":20}`)
		tampered := &offline.Decoded{Name: "tampered.bundle", Bundle: &b}
		_, err := offline.Import(ctx, q, []*offline.Decoded{decode(t, "ok.bundle", plain), tampered}, offline.ImportOptions{})
		var bad *offline.EntryError
		if !errors.As(err, &bad) || bad.Bundle != "tampered.bundle" || bad.Pos != 1 || !strings.Contains(err.Error(), "payload hash mismatch") {
			t.Fatalf("import with a tampered entry: %v; want entry 1 of tampered.bundle named, a payload hash mismatch", err)
		}
		if entries := centralEntries(t, q); len(entries) != 0 {
			t.Fatalf("a refused import wrote %d entries", len(entries))
		}

		r, err := offline.Import(ctx, q, []*offline.Decoded{tampered}, offline.ImportOptions{Force: true})
		if err != nil || r.Imported != 1 || len(r.Skipped) != 1 || r.Skipped[0].Pos != 1 {
			t.Fatalf("forced import: %+v, %v; want the entry before the bad one imported, the bad one reported", r, err)
		}

		if _, err := offline.Decode(ctx, "signed.bundle", signed, []*audit.PublicKey{other}, false); !errors.Is(err, offline.ErrSignature) {
			t.Errorf("a bundle checked with the wrong key: %v, want ErrSignature", err)
		}
		if _, err := offline.Decode(ctx, "signed.bundle", signed, nil, false); !errors.Is(err, offline.ErrSignature) {
			t.Errorf("a signed bundle with no key to check it: %v, want ErrSignature", err)
		}
		if _, err := offline.Decode(ctx, "plain.bundle", plain, []*audit.PublicKey{verifier}, true); !errors.Is(err, offline.ErrSignature) {
			t.Errorf("an unsigned bundle where a signature is required: %v, want ErrSignature", err)
		}
		forged := strings.Replace(string(signed), `"payload": "`, `"payload": "e`, 1)
		if _, err := offline.Decode(ctx, "forged.bundle", []byte(forged), []*audit.PublicKey{verifier}, false); !errors.Is(err, offline.ErrSignature) {
			t.Errorf("a signed bundle whose payload changed: %v, want ErrSignature", err)
		}
		if d, err := offline.Decode(ctx, "signed.bundle", signed, []*audit.PublicKey{other, verifier}, true); err != nil || d.SignedBy != verifier.KeyID() {
			t.Errorf("the signed bundle with its key: %+v, %v", d, err)
		}
		// One node's key does not vouch for another node's entries.
		bPriv, bPub, _ := audit.GenerateKey(nil, "field-b")
		bSigner, _ := audit.ParsePrivateKey(bPriv)
		bVerifier, _ := audit.ParsePublicKey(bPub)
		posing := offlineNode(t, "field-a", t0, jobs, bSigner)
		if _, err := offline.Decode(ctx, "posing.bundle", posing, []*audit.PublicKey{bVerifier}, true); !errors.Is(err, offline.ErrSignature) ||
			!strings.Contains(err.Error(), "signed by node field-b's key but holds node field-a's entry") {
			t.Errorf("field-a's entries signed with field-b's key: %v, want ErrSignature naming both", err)
		}

		// One source entry twice with different contents (a field the
		// link does not cover changed): refused, not a choice that would
		// depend on the order of the bundles.
		var other2 offline.Bundle
		if err := json.Unmarshal(plain, &other2); err != nil {
			t.Fatal(err)
		}
		other2.Chains[0].Entries[0].Priority = 7
		fresh, _ := openNode(t, testdb.SQLiteURL(t), "central-x", t0+60_000)
		_, err = offline.Import(ctx, fresh, []*offline.Decoded{decode(t, "a.bundle", plain), {Name: "a2.bundle", Bundle: &other2}}, offline.ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "comes twice with different entries") {
			t.Errorf("one job id, two different entries: %v", err)
		}
		if entries := centralEntries(t, fresh); len(entries) != 0 {
			t.Errorf("a refused import wrote %d entries", len(entries))
		}

		// A bundle of a node that has the importer's own id is refused.
		same, _ := openNode(t, testdb.SQLiteURL(t), "field-a", t0+60_000)
		if _, err := offline.Import(ctx, same, []*offline.Decoded{decode(t, "a.bundle", plain)}, offline.ImportOptions{}); err == nil ||
			!strings.Contains(err.Error(), "is the importing node itself") {
			t.Errorf("a bundle of the importer's own node id: %v", err)
		}
	})
}
