package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/service"
)

// README's main command, as a newcomer runs it (no configuration file),
// shows ordo as it is meant to be seen: HLC reads, jobs from two nodes in
// one chain, and checkpoints signed by a key the demo made, so that a
// job's inclusion proof checks with `ordo proof check`.
func TestServeDemoShowsHLCOrderTwoNodesAndProofs(t *testing.T) {
	for name, db := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "ordo.db"),
		"postgres": testdb.NewDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // where a PostgreSQL demo keeps its key
			t.Setenv(configEnvForTest("Ordo:Log:Level"), "debug")
			t.Setenv(configEnvForTest("Ordo:Demo:Rate"), "100")
			t.Setenv(configEnvForTest("Ordo:Audit:CheckpointInterval"), "50ms")

			ctx, cancel := context.WithCancel(context.Background())
			output := newOutput()
			stdout, stderr := syncBuffer{lines: output, from: "stdout"}, syncBuffer{lines: output, from: "stderr"}
			exited := make(chan int, 1)
			go func() {
				code := runOrdo(ctx, []string{"serve", "--db", db, "--node", "demo-node", "--listen", "127.0.0.1:0", "--demo"}, &stdout, &stderr)
				output.Record(printed{from: "serve", line: fmt.Sprint("code ", code), exited: true})
				exited <- code
			}()
			defer func() {
				cancel()
				select {
				case <-exited:
				case <-time.After(60 * time.Second):
					t.Error("serve did not stop")
				}
			}()
			urlRE := regexp.MustCompile(`ordo: serving (http://127\.0\.0\.1:\d+) \(node demo-node, mode (\S+),`)
			p := output.Await(t, "serve to print its URL", func(p printed) bool {
				return p.exited || (p.from == "stdout" && urlRE.MatchString(p.line))
			})
			if p.exited {
				t.Fatalf("serve exited (%s): %s%s", p.line, stdout.String(), stderr.String())
			}
			m := urlRE.FindStringSubmatch(p.line)
			base := m[1]
			if m[2] != "hlc-reads" {
				t.Fatalf("serve --demo runs in mode %s, want hlc-reads (HLC ordering on)", m[2])
			}
			token := regexp.MustCompile(`demo: log in with the admin token (\S+)\)`).FindStringSubmatch(stdout.String())
			if token == nil {
				t.Fatalf("serve --demo printed no admin token:\n%s", stdout.String())
			}

			// A job the second node enqueued ran (its t_hlc names the peer).
			peer := service.DemoPeerNodeID("demo-node")
			jobRE := regexp.MustCompile(`msg="worker: job finished" job_id=(\S+) kind=noop tenant_id=demo-a .* t_hlc=(\S+-` + regexp.QuoteMeta(peer) + `) `)
			p = output.Await(t, "a job of demo-a enqueued by "+peer+" to run", func(p printed) bool {
				return p.from == "stderr" && jobRE.MatchString(p.line)
			})
			jobID := jobRE.FindStringSubmatch(p.line)[1]

			var job struct {
				THLC      *string `json:"t_hlc"`
				Partition string  `json:"partition"`
				Chain     *struct {
					Link string `json:"link"`
				} `json:"chain"`
			}
			getJSON(t, base+"/v1/tenants/demo-a/jobs/"+jobID, token[1], &job)
			if job.THLC == nil || !strings.HasSuffix(*job.THLC, "-"+peer) || job.Chain == nil || len(job.Chain.Link) != 64 {
				t.Fatalf("the peer's job has t_hlc %v and chain entry %+v, want both, the t_hlc naming %s", job.THLC, job.Chain, peer)
			}
			// This node's jobs share the chains.
			var list struct {
				Jobs []struct {
					THLC *string `json:"t_hlc"`
				} `json:"jobs"`
			}
			getJSON(t, base+"/v1/tenants/demo-a/jobs?limit=100", token[1], &list)
			nodes := map[string]bool{}
			for _, j := range list.Jobs {
				if j.THLC == nil {
					t.Fatalf("a demo job without t_hlc: %+v", list.Jobs)
				}
				ts, err := hlc.Parse(*j.THLC)
				if err != nil {
					t.Fatal(err)
				}
				nodes[ts.Node] = true
			}
			if !nodes["demo-node"] || !nodes[peer] {
				t.Fatalf("demo-a's jobs come from nodes %v, want demo-node and %s", nodes, peer)
			}

			// Two checkpoints of its chain signed after it ran: the second
			// was begun after the job was in the chain, so it covers it.
			origin := audit.Origin(chain.Key{TenantID: "demo-a", PartitionKey: job.Partition})
			after, signed := false, 0
			output.Await(t, "two checkpoints of "+origin+" after the job ran", func(p printed) bool {
				if p.from == "stderr" && strings.Contains(p.line, "job_id="+jobID) {
					after = true
				}
				if after && strings.Contains(p.line, `msg="audit: checkpoint signed" origin=`+origin+" ") {
					signed++
				}
				return signed == 2
			})

			dir := t.TempDir()
			proofFile := filepath.Join(dir, "job.proof")
			if _, errOut, code := ordo(t, "proof", "inclusion", "--db", db, "--job", jobID, "-o", proofFile); code != 0 {
				t.Fatalf("proof inclusion: %d %s", code, errOut)
			}
			keyFile := demoKeyFile(t, db)
			text, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			priv, err := audit.ParsePrivateKey(strings.TrimSpace(string(text)))
			if err != nil {
				t.Fatal(err)
			}
			pubFile := filepath.Join(dir, "demo.pub")
			if err := os.WriteFile(pubFile, []byte(priv.Public().String()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, errOut, code := ordo(t, "proof", "check", proofFile, "--key", pubFile); code != 0 {
				t.Fatalf("proof check of the peer's job: %d %s%s", code, out, errOut)
			}
			if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("the demo's key %s: %v, mode %v, want 0600", keyFile, err, info.Mode())
			}
		})
	}
}

// demoKeyFile is where serve --demo keeps its key for db.
func demoKeyFile(t *testing.T, db string) string {
	t.Helper()
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		return path + ".demo.key"
	}
	return filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "ordo", "demo.key")
}

// configEnvForTest is the environment variable of a configuration key.
func configEnvForTest(key string) string { return strings.ReplaceAll(key, ":", "__") }

func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
