package service_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/service"
)

// TestSigningKey: with Ordo:Audit:SigningKeyFile, serve checkpoints every
// chain and snapshots dequeued batches, and verify checks the signatures.
func TestSigningKey(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		priv, _, err := audit.GenerateKey(rand.Reader, "test-node")
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "node.key")
		if err := os.WriteFile(keyFile, []byte(priv+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Audit = config.Audit{SigningKeyFile: keyFile, CheckpointInterval: 5 * time.Millisecond, SnapshotOnDequeue: true}
		}, service.Options{})
		if err := e.svc.Start(context.Background()); err != nil {
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
			if err := e.raw.QueryRow("SELECT count(*) FROM " + e.prefix + table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count("batch_snapshot"); n != 2 { // one per chain of the batch
			t.Fatalf("%d batch snapshots, want 2", n)
		}
		waitFor(t, "checkpoints of both chains", func() bool { return count("chain_checkpoints") >= 2 })
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
		_, text := get(t, e.url+"/metrics")
		if got := metricValue(t, text, "scheduler_batch_snapshots_created_total"); got != "2" {
			t.Fatalf("scheduler_batch_snapshots_created_total = %q", got)
		}
	})
}
