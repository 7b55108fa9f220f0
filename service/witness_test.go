package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/internal/witnesstest"
	"github.com/ordo-sched/ordo/service"
)

// TestServedCheckpointsCarryCosignatures: a stored witness cosignature
// (made here by torchwood's cosignature signer, as litewitness makes them;
// cmd/ordo's witness test runs the real witness) is served appended to the
// checkpoint by the API's checkpoints route and by the tlog-tiles
// checkpoint, which still verify with the node key.
func TestServedCheckpointsCarryCosignatures(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		te := newTlogEnv(t, dbURL)
		ctx := context.Background()
		as := te.Svc.Queue().Backend().AuditStore()
		cps, err := as.Checkpoints(ctx, te.acme, 1)
		if err != nil || len(cps) != 1 {
			t.Fatalf("checkpoints: %v, %v", cps, err)
		}
		signer, err := torchwood.NewCosignatureSigner("witness.test/w1", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		wkey, err := audit.ParseWitnessKey(signer.Verifier().String())
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(cps[0].Note, note.VerifierList(te.pub.NoteVerifier()))
		if err != nil {
			t.Fatal(err)
		}
		cosigned, err := note.Sign(&note.Note{Text: n.Text}, signer)
		if err != nil {
			t.Fatal(err)
		}
		_, sigs, _ := strings.Cut(string(cosigned), "\n\n")
		store := audit.CosignatureStoreOf(as)
		if err := store.InsertCosignature(ctx, &driver.Cosignature{Key: te.acme, Size: cps[0].Size, WitnessKeyID: wkey.KeyID(),
			SignatureLine: strings.TrimSuffix(sigs, "\n"), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}

		check := func(where string, msg []byte) {
			t.Helper()
			if got, problems := audit.CountCosignatures(msg, []*audit.WitnessKey{wkey}); got != 1 {
				t.Fatalf("%s: %d valid cosignatures (%v):\n%s", where, got, problems, msg)
			}
			if _, _, err := audit.OpenCheckpoint(msg, te.pub); err != nil {
				t.Fatalf("%s: the node key no longer verifies it: %v", where, err)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, te.base(te.acme)+"checkpoint", nil)
		req.Header.Set("Authorization", "Bearer "+acmeToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("tlog checkpoint: %d %s", resp.StatusCode, body.String())
		}
		check("tlog checkpoint", body.Bytes())

		r := te.call(http.MethodGet, "/v1/tenants/acme/checkpoints", acmeToken, nil).must(t, http.StatusOK)
		found := false
		for _, c := range r.body["checkpoints"].([]any) {
			c := c.(map[string]any)
			if c["partition_key"] == "" {
				check("API checkpoints", []byte(c["note"].(string)))
				found = true
			}
		}
		if !found {
			t.Fatalf("no checkpoint of acme's default partition: %s", r.raw)
		}
	})
}

// TestServiceSubmitsCheckpointsToAWitness: a running service with
// Ordo:Audit:Witnesses set submits its checkpoints to a real litewitness,
// serves them cosigned and counts ordo_witness_submissions_total; with the
// witness stopped, enqueues still succeed and the failure is counted as
// unreachable.
func TestServiceSubmitsCheckpointsToAWitness(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		w := witnesstest.Start(t)
		priv, _, err := audit.GenerateKey(rand.Reader, "test-node")
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "node.key")
		if err := os.WriteFile(keyFile, []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		signer, err := audit.ParsePrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		acme := chain.Key{TenantID: "acme"}
		logKey, err := signer.Public().OriginVerifierKey(audit.Origin(acme))
		if err != nil {
			t.Fatal(err)
		}
		w.Register(t, audit.Origin(acme), logKey)
		wkey, err := audit.ParseWitnessKey(w.VKey)
		if err != nil {
			t.Fatal(err)
		}

		type submission struct{ witness, result string }
		submissions := testsignal.New[submission]()
		submissions.Format = func(s submission) string { return s.witness + " " + s.result }
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Audit = config.Audit{SigningKeyFile: keyFile, CheckpointInterval: 5 * time.Millisecond,
				Witnesses: []config.Witness{{URL: w.URL, Key: w.VKey}}}
		}, service.Options{OnWitnessSubmission: func(witness, result string) { submissions.Record(submission{witness, result}) }})
		if err := e.Svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "payload": map[string]any{"i": 1}})
		submissions.Await(t, "a cosigned checkpoint", func(s submission) bool { return s.witness == w.URL && s.result == audit.WitnessCosigned })

		r := e.call(http.MethodGet, "/v1/tenants/acme/tlog/checkpoint", acmeToken, nil)
		if r.status != http.StatusOK {
			t.Fatalf("tlog checkpoint: %d %s", r.status, r.raw)
		}
		if n, problems := audit.CountCosignatures(r.raw, []*audit.WitnessKey{wkey}); n != 1 {
			t.Fatalf("the served checkpoint has %d cosignatures (%v):\n%s", n, problems, r.raw)
		}
		_, metrics := get(t, e.URL+"/metrics")
		series := fmt.Sprintf(`ordo_witness_submissions_total{result="cosigned",witness=%q}`, w.URL)
		if v := metricValue(t, metrics, series); v == "" || v == "0" {
			t.Fatalf("%s = %q", series, v)
		}

		// The witness goes down: enqueues go on, the failures are counted.
		w.Stop()
		e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "payload": map[string]any{"i": 2}})
		submissions.Await(t, "an unreachable witness", func(s submission) bool { return s.witness == w.URL && s.result == audit.WitnessUnreachable })
		e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "payload": map[string]any{"i": 3}})
	})
}
