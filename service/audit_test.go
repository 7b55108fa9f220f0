package service_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/service"
)

// TestSigningKey: with Ordo:Audit:SigningKeyFile, serve checkpoints every
// chain and snapshots dequeued batches, and verify checks the signatures.
func TestSigningKey(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		priv, pub, err := audit.GenerateKey(rand.Reader, "test-node")
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "node.key")
		if err := os.WriteFile(keyFile, []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		checkpoints := testsignal.New[driver.Checkpoint]()
		checkpoints.Format = func(c driver.Checkpoint) string {
			return fmt.Sprintf("checkpoint %s/%s size %d", c.Key.TenantID, c.Key.PartitionKey, c.Size)
		}
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Audit = config.Audit{SigningKeyFile: keyFile, CheckpointInterval: 5 * time.Millisecond, SnapshotOnDequeue: true}
		}, service.Options{OnCheckpoint: func(c *driver.Checkpoint) { checkpoints.Record(*c) }})
		if err := e.Svc.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			e.enqueue("acme", acmeToken, map[string]any{"kind": "k", "partition": []string{"a", "b", "a"}[i], "payload": map[string]any{"i": i}})
		}
		d := e.call("POST", "/v1/tenants/acme/dequeue", acmeToken, map[string]any{"limit": 3}).must(t, http.StatusOK)
		if n := len(d.body["jobs"].([]any)); n != 3 {
			t.Fatalf("dequeued %d", n)
		}
		count := func(table string) int {
			var n int
			if err := e.Raw.QueryRow("SELECT count(*) FROM " + e.Prefix + table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count("batch_snapshot"); n != 2 { // one per chain of the batch
			t.Fatalf("%d batch snapshots, want 2", n)
		}
		chains := map[string]bool{}
		checkpoints.Await(t, "checkpoints of both chains", func(c driver.Checkpoint) bool {
			chains[c.Key.PartitionKey] = true
			return chains["a"] && chains["b"]
		})
		if n := count("chain_checkpoints"); n < 2 {
			t.Fatalf("%d checkpoints stored, want 2 or more", n)
		}
		v := e.call("POST", "/v1/tenants/acme/verify", acmeToken, nil).must(t, http.StatusOK)
		if v.body["valid"] != true {
			t.Fatalf("verify: %s", v.raw)
		}
		checked := 0.0
		for _, c := range v.body["chains"].([]any) {
			checked += c.(map[string]any)["checkpoints_checked"].(float64)
		}
		if checked < 2 {
			t.Fatalf("verify checked %v checkpoints: %s", checked, v.raw)
		}
		_, text := get(t, e.URL+"/metrics")
		if got := metricValue(t, text, "scheduler_batch_snapshots_created_total"); got != "2" {
			t.Fatalf("scheduler_batch_snapshots_created_total = %q", got)
		}

		// What an auditor fetches: snapshots, checkpoints, and a job's proof,
		// which then checks offline with the public key and the checkpoint.
		made := e.call("POST", "/v1/tenants/acme/snapshots", acmeToken, map[string]any{"partition": "a"}).must(t, http.StatusCreated)
		// Stamped by the service's clock (injected here), in UTC, as every
		// other time it writes.
		if want := time.UnixMilli(e.Wall.UnixMilli()).UTC().Format(time.RFC3339Nano); made.body["created_at"] != want {
			t.Fatalf("snapshot created_at %v, want the service's clock %s", made.body["created_at"], want)
		}
		e.call("POST", "/v1/tenants/acme/snapshots", acmeToken, map[string]any{"partition": "nowhere"}).must(t, http.StatusConflict)
		// An unknown filter is refused, not ignored (it would list every partition).
		if r := e.call("GET", "/v1/tenants/acme/snapshots?partition=a", acmeToken, nil); r.must(t, http.StatusBadRequest).errCode() != "unknown_field" {
			t.Fatalf("GET snapshots?partition=a: %s", r.raw)
		}
		sn := e.call("GET", "/v1/tenants/acme/snapshots", acmeToken, nil).must(t, http.StatusOK)
		if n := len(sn.body["snapshots"].([]any)); n != 3 {
			t.Fatalf("GET snapshots listed %d, want 2 from batches and 1 on demand: %s", n, sn.raw)
		}
		cps := e.call("GET", "/v1/tenants/acme/checkpoints", acmeToken, nil).must(t, http.StatusOK)
		var notes [][]byte
		for _, c := range cps.body["checkpoints"].([]any) {
			notes = append(notes, []byte(c.(map[string]any)["note"].(string)))
		}
		if len(notes) != 2 {
			t.Fatalf("GET checkpoints listed %d, want 2: %s", len(notes), cps.raw)
		}
		pr := e.call("GET", "/v1/tenants/acme/jobs/"+d.body["jobs"].([]any)[0].(map[string]any)["job_id"].(string)+"/proof", acmeToken, nil).must(t, http.StatusOK)
		var proof audit.Proof
		if err := json.Unmarshal(pr.raw, &proof); err != nil {
			t.Fatal(err)
		}
		pubKey, err := audit.ParsePublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := audit.CheckProof(&proof, pubKey, notes...); err != nil || !res.Valid {
			t.Fatalf("the served inclusion proof does not check: %+v, %v", res, err)
		}
		_, other, err := audit.GenerateKey(rand.Reader, "forger")
		if err != nil {
			t.Fatal(err)
		}
		otherKey, _ := audit.ParsePublicKey(other)
		if res, err := audit.CheckProof(&proof, otherKey); err != nil || res.Valid {
			t.Fatalf("the proof checked with another node's public key: %+v, %v", res, err)
		}
	})
}
