package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/service"
)

// runOrdo runs the CLI in-process. Until main.go registers serve, jobs and
// token, it runs them under a root of its own with the same global flags.
func runOrdo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if c, _, err := newRootCommand().Find([]string{"serve"}); err == nil && c.Name() == "serve" {
		return run(ctx, args, stdout, stderr)
	}
	g := &globalFlags{}
	root := &cobra.Command{Use: "ordo", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.db, "db", "", "database URL")
	root.PersistentFlags().StringVar(&g.node, "node", "", "node id")
	root.AddCommand(newServeCommand(g), newJobsCommand(g), newTokenCommand(g))
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ordo:", err)
		if ee, ok := err.(*exitError); ok {
			return ee.code
		}
		return 2
	}
	return 0
}

func ordo(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runOrdo(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// syncBuffer is a bytes.Buffer safe to read while the command writes.
// With lines set, it also records every complete line as it is written
// (a command's output is a stream of events: a test waits for the line
// it expects, not polling the buffer), as printed{from: from}.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	lines   *testsignal.Recorder[printed]
	from    string
	partial []byte
}

// printed is one line a command wrote (without its newline) to the
// writer from, or, with exited, the command's end and how it ended.
type printed struct {
	from, line string
	exited     bool
}

func (p printed) String() string {
	if p.exited {
		return p.from + " exited: " + p.line
	}
	return p.from + ": " + p.line
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	var lines []string
	if s.lines != nil {
		s.partial = append(s.partial, p...)
		for {
			i := bytes.IndexByte(s.partial, '\n')
			if i < 0 {
				break
			}
			lines = append(lines, string(s.partial[:i]))
			s.partial = s.partial[i+1:]
		}
	}
	s.mu.Unlock()
	for _, l := range lines {
		s.lines.Record(printed{from: s.from, line: l})
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newOutput returns a recorder of printed lines that shows them with
// printed.String when a wait fails.
func newOutput() *testsignal.Recorder[printed] {
	r := testsignal.New[printed]()
	r.Format = printed.String
	return r
}

func TestServeTokenAndJobsCommands(t *testing.T) {
	for name, db := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "ordo.db"),
		"postgres": testdb.NewDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "ordo.yaml")
			if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(`Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: false  # Keep using legacy ordering for reads
      DualWriteMode: true       # Write to both legacy and HLC tables
Ordo:
  NodeId: cli-node
  Database:
    Url: %q
  Log:
    Level: debug  # the worker's lines about each job tell the test when demo jobs ran
`, db)), 0o600); err != nil {
				t.Fatal(err)
			}

			// A token, printed once.
			out, errOut, code := ordo(t, "token", "create", "--config", cfgPath, "--tenant", "acme", "--name", "ci")
			if code != 0 {
				t.Fatalf("token create: %d %s", code, errOut)
			}
			var created map[string]any
			if err := json.Unmarshal([]byte(out), &created); err != nil {
				t.Fatal(err, out)
			}
			token, id := created["token"].(string), created["id"].(string)
			if !strings.HasPrefix(token, service.TokenPrefix) || created["tenant"] != "acme" || created["admin"] != false {
				t.Fatalf("token create printed %s", out)
			}
			out, _, _ = ordo(t, "token", "list", "--config", cfgPath)
			if strings.Contains(out, token) || !strings.Contains(out, id) || !strings.Contains(out, `"revoked_at": null`) ||
				!strings.Contains(out, `"expires_at": null`) {
				t.Fatalf("token list: %s", out)
			}
			// One that expires says when.
			out, errOut, code = ordo(t, "token", "create", "--config", cfgPath, "--tenant", "acme", "--name", "trial", "--expires", "720h")
			if err := json.Unmarshal([]byte(out), &created); code != 0 || err != nil {
				t.Fatalf("token create --expires: %d %s %s", code, out, errOut)
			}
			if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(created["expires_at"])); err != nil || at.Before(time.Now().Add(719*time.Hour)) {
				t.Fatalf("token create --expires 720h printed expires_at %v", created["expires_at"])
			}
			if _, errOut, code := ordo(t, "token", "create", "--config", cfgPath, "--tenant", "acme", "--expires", "-1h"); code == 0 || !strings.Contains(errOut, "--expires") {
				t.Fatalf("token create --expires -1h: %d %s", code, errOut)
			}
			if _, errOut, code := ordo(t, "token", "revoke", created["id"].(string), "--config", cfgPath); code != 0 {
				t.Fatalf("token revoke of the trial token: %s", errOut)
			}
			if out, _, code := ordo(t, "token", "hash", token); code != 0 || strings.TrimSpace(out) != service.HashToken(token) {
				t.Fatalf("token hash: %d %s", code, out)
			}

			// Serve on a free port, with the demo trickle.
			ctx, cancel := context.WithCancel(context.Background())
			output := newOutput()
			stdout, stderr := syncBuffer{lines: output, from: "stdout"}, syncBuffer{lines: output, from: "stderr"}
			exited := make(chan int, 1)
			go func() {
				code := runOrdo(ctx, []string{"serve", "--config", cfgPath, "--listen", "127.0.0.1:0", "--demo"}, &stdout, &stderr)
				output.Record(printed{from: "serve", line: fmt.Sprint("code ", code), exited: true})
				exited <- code
			}()
			urlRE := regexp.MustCompile(`ordo: serving (http://127\.0\.0\.1:\d+) \(node cli-node, mode dual-write`)
			p := output.Await(t, "serve to print its URL", func(p printed) bool {
				return p.exited || (p.from == "stdout" && urlRE.MatchString(p.line))
			})
			if p.exited {
				t.Fatalf("serve exited (%s): %s%s", p.line, stdout.String(), stderr.String())
			}
			base := urlRE.FindStringSubmatch(p.line)[1]
			resp, err := http.Get(base + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz: %v %v", resp, err)
			}
			resp.Body.Close()
			req, _ := http.NewRequest("POST", base+"/v1/tenants/acme/jobs", strings.NewReader(`{"kind":"report.build","payload":{"day":"2026-11-23"}}`))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var enq map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&enq)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("enqueue through serve: %d %v", resp.StatusCode, enq)
			}
			jobID := enq["job_id"].(string)
			// The demo prints an admin token of its own, which the API takes.
			demoRE := regexp.MustCompile(`ordo: dashboard http://127\.0\.0\.1:\d+/ \(demo: log in with the admin token (\S+)\)`)
			m := demoRE.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("serve --demo printed no demo token:\n%s", stdout.String())
			}
			req, _ = http.NewRequest("GET", base+"/v1/tenants/demo-a/jobs", nil)
			req.Header.Set("Authorization", "Bearer "+m[1])
			if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("the demo token on demo-a's jobs: %v %v", resp, err)
			}
			resp.Body.Close()
			// It expires by itself (issue 14: a killed demo left it behind).
			if out, _, _ := ordo(t, "token", "list", "--config", cfgPath); !regexp.MustCompile(`"name": "demo",\s+"created_at": "[^"]+",\s+"revoked_at": null,\s+"expires_at": "2`).MatchString(out) {
				t.Fatalf("the demo's token has no expiry:\n%s", out)
			}
			// The worker logs each job it ran: once one of demo-b's noop jobs
			// did, the demo has enqueued it.
			output.Await(t, "a demo job of demo-b to run", func(p printed) bool {
				return p.from == "stderr" && strings.Contains(p.line, `msg="worker: job finished"`) &&
					strings.Contains(p.line, " kind=noop ") && strings.Contains(p.line, " tenant_id=demo-b ")
			})
			if out, _, _ := ordo(t, "jobs", "list", "--config", cfgPath, "--tenant", "demo-b", "--limit", "1"); !strings.Contains(out, `"kind": "noop"`) {
				t.Fatalf("jobs list shows no demo job of demo-b:\n%s", out)
			}
			cancel() // SIGINT / SIGTERM in main
			select {
			case code := <-exited:
				if code != 0 || !strings.Contains(stdout.String(), "ordo: stopped") {
					t.Fatalf("serve exited %d: %s%s", code, stdout.String(), stderr.String())
				}
			case <-time.After(60 * time.Second):
				t.Fatal("serve did not stop")
			}

			// jobs list / show read the same configuration.
			out, errOut, code = ordo(t, "jobs", "list", "--config", cfgPath, "--tenant", "acme", "--payload")
			if code != 0 {
				t.Fatalf("jobs list: %d %s", code, errOut)
			}
			var listed struct {
				Jobs []map[string]any `json:"jobs"`
			}
			if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed.Jobs) != 1 || listed.Jobs[0]["job_id"] != jobID ||
				listed.Jobs[0]["in_legacy"] != true || listed.Jobs[0]["in_hlc"] != true {
				t.Fatalf("jobs list: %v %s", err, out)
			}
			out, _, code = ordo(t, "jobs", "show", jobID, "--config", cfgPath)
			if code != 0 || !strings.Contains(out, `"chain_pos": 0`) || !strings.Contains(out, `"day": "2026-11-23"`) {
				t.Fatalf("jobs show: %d %s", code, out)
			}
			if _, _, code := ordo(t, "jobs", "show", jobID, "--config", cfgPath, "--tenant", "globex"); code != 1 {
				t.Fatalf("jobs show of another tenant's job: exit %d", code)
			}
			// --db overrides the file's URL. A read command does not
			// create a database that is not there (issue 16: a typo made
			// an empty one and answered from it); migrate does.
			otherPath := filepath.Join(t.TempDir(), "other.db")
			other := "sqlite:" + otherPath
			if _, errOut, code := ordo(t, "jobs", "list", "--config", cfgPath, "--db", other, "--tenant", "acme"); code == 0 || !strings.Contains(errOut, "no database at") {
				t.Fatalf("jobs list on a missing file: exit %d %s", code, errOut)
			}
			if _, err := os.Stat(otherPath); !os.IsNotExist(err) {
				t.Fatalf("jobs list created %s: %v", otherPath, err)
			}
			if _, errOut, code := ordo(t, "verify", "--db", other, "--tenant", "acme"); code != 2 || !strings.Contains(errOut, "no database at") {
				t.Fatalf("verify on a missing file: exit %d %s", code, errOut)
			}
			if _, errOut, code := ordo(t, "migrate", "--db", other); code != 0 {
				t.Fatalf("migrate --db %s: %s", other, errOut)
			}
			out, _, _ = ordo(t, "jobs", "list", "--config", cfgPath, "--db", other, "--tenant", "acme")
			if !strings.Contains(out, `"jobs": []`) {
				t.Fatalf("--db did not override the file: %s", out)
			}
			// Nothing to verify is not a pass.
			if _, errOut, code := ordo(t, "verify", "--db", other, "--tenant", "nosuchtenant"); code != 1 || !strings.Contains(errOut, "nothing was verified") {
				t.Fatalf("verify of a tenant with no chains: exit %d %s", code, errOut)
			}

			if _, errOut, code := ordo(t, "token", "revoke", id, "--config", cfgPath); code != 0 {
				t.Fatalf("token revoke: %s", errOut)
			}
			if out, _, _ := ordo(t, "token", "list", "--config", cfgPath); strings.Contains(out, `"revoked_at": null`) {
				t.Fatalf("revoked token still active: %s", out)
			}
			if _, _, code := ordo(t, "token", "revoke", "tok_nope", "--config", cfgPath); code != 1 {
				t.Fatalf("revoking an unknown token: exit %d", code)
			}
		})
	}
}

func TestServeRefusesAnInvalidConfiguration(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "ordo.yaml")
	if err := os.WriteFile(cfgPath, []byte(`Scheduler:
  Queue:
    Hlc:
      MaxClockDriftMs: 0
      EnableHlcOrdring: true
Ordo:
  Http:
    Listen: nowhere
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := ordo(t, "serve", "--config", cfgPath, "--db", "sqlite:"+filepath.Join(t.TempDir(), "o.db"))
	if code == 0 {
		t.Fatal("serve started with an invalid configuration")
	}
	for _, want := range []string{"3 problems", "Scheduler:Queue:Hlc:MaxClockDriftMs = 0", "want 1..86400000", "EnableHlcOrdring", "unknown key", `Ordo:Http:Listen = "nowhere"`} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	// Environment variables are checked as strictly.
	t.Setenv("Scheduler__Queue__Hlc__Bogus", "1")
	_, errOut, _ = ordo(t, "jobs", "list", "--tenant", "acme", "--db", "sqlite:"+filepath.Join(t.TempDir(), "o.db"))
	if !strings.Contains(errOut, "Scheduler:Queue:Hlc:Bogus (env Scheduler__Queue__Hlc__Bogus): unknown key") {
		t.Fatalf("unknown variable: %s", errOut)
	}
	if _, errOut, code := ordo(t, "token", "create", "--tenant", "a", "--admin"); code == 0 || !strings.Contains(errOut, "exactly one") {
		t.Fatalf("token create with both: %d %s", code, errOut)
	}
}
