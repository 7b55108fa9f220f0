package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/store/sqlite"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// `ordo demo` right after `ordo serve` must not touch the user's jobs:
// it runs on a fresh database of its own unless --db names one, and on a
// named one hands out only its own tenants' jobs (issue 16: it completed
// the user's two pending jobs and then reported a contradiction).
func TestDemoTouchesNothingOfTheUsers(t *testing.T) {
	userDB := "sqlite:" + filepath.Join(t.TempDir(), "ordo.db")
	out, errOut, code := runCLI(t, "enqueue", "--db", userDB, "--tenant", "acme", "--kind", "report", "--payload", `{"day":1}`, "--dual-write-mode")
	if code != 0 {
		t.Fatalf("enqueue: %d %s", code, errOut)
	}
	var enq struct {
		JobID string `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(out), &enq); err != nil || enq.JobID == "" {
		t.Fatalf("enqueue printed %q: %v", out, err)
	}
	stillPending := func(when string) {
		t.Helper()
		out, errOut, code := runCLI(t, "jobs", "show", enq.JobID, "--db", userDB)
		if code != 0 || !strings.Contains(out, `"status": "pending"`) || !strings.Contains(out, `"attempts": 0`) {
			t.Fatalf("%s, the user's job is not pending and untried: %d %s%s", when, code, out, errOut)
		}
	}

	t.Setenv("ORDO_DATABASE_URL", userDB) // as `ordo serve` left it
	out, errOut, code = runCLI(t, "demo")
	if code != 0 || !strings.Contains(out, "a fresh database of its own") || !strings.Contains(out, "0 never, 0 more than once") {
		t.Fatalf("demo: %d %s%s", code, out, errOut)
	}
	stillPending("after demo")
	if out, _, _ := runCLI(t, "jobs", "list", "--db", userDB, "--tenant", "demo-acme"); !strings.Contains(out, `"jobs": []`) {
		t.Fatalf("demo without --db wrote into $ORDO_DATABASE_URL:\n%s", out)
	}

	out, errOut, code = runCLI(t, "demo", "--db", userDB)
	if code != 0 || !strings.Contains(out, "0 never, 0 more than once") {
		t.Fatalf("demo --db: %d %s%s", code, out, errOut)
	}
	stillPending("after demo --db")
}

func TestDemoOnSQLite(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "ordo.db")
	out, errOut, code := runCLI(t, "demo", "--db", db)
	if code != 0 {
		t.Fatalf("demo exited %d: %s", code, errOut)
	}
	for _, want := range []string{
		"phase 1: dual-write", "phase 2: backfill", "phase 3: HLC reads", "phase 4: HLC only", "rollback",
		"0 never, 0 more than once",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Run again on the same database: new jobs, the same guarantees.
	if out, errOut, code := runCLI(t, "demo", "--db", db); code != 0 || !strings.Contains(out, "0 never, 0 more than once") {
		t.Fatalf("second demo run exited %d: %s%s", code, out, errOut)
	}
}

func TestMigrateAndStatus(t *testing.T) {
	for name, db := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "ordo.db"),
		"postgres": testdb.NewDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			if path, ok := sqlite.PathOf(db); ok {
				// Issue 16: status does not create a missing file (a
				// mistyped --db), it says so; an empty file is a database
				// without the schema.
				_, errOut, code := runCLI(t, "migrate", "status", "--db", db)
				if _, err := os.Stat(path); code != 2 || !strings.Contains(errOut, "no database at "+path) || !os.IsNotExist(err) {
					t.Fatalf("status on a missing file: exit %d, %s (file: %v)", code, errOut, err)
				}
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			out, errOut, code := runCLI(t, "migrate", "status", "--db", db)
			files, _ := fs.Glob(mustFiles(t, name), "*.sql")
			if code != 0 || len(files) < 3 || strings.Count(out, "pending") != len(files) {
				t.Fatalf("status before migrate: exit %d, %s%s", code, out, errOut)
			}
			out, errOut, code = runCLI(t, "migrate", "--db", db)
			if code != 0 || !strings.Contains(out, "applied 002_hlc_queue_chain.sql") {
				t.Fatalf("migrate: exit %d, %s%s", code, out, errOut)
			}
			out, _, _ = runCLI(t, "migrate", "--db", db)
			if !strings.Contains(out, "schema is up to date") {
				t.Fatalf("second migrate: %s", out)
			}
			out, _, _ = runCLI(t, "migrate", "status", "--db", db)
			if strings.Contains(out, "pending") || !strings.Contains(out, "002_hlc_queue_chain.sql") {
				t.Fatalf("status after migrate:\n%s", out)
			}
		})
	}
}

func mustFiles(t *testing.T, name string) fs.FS {
	t.Helper()
	fsys, err := migrations.Files(migrations.Dialect(name))
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestClockPersistsBound(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "ordo.db")
	var first, second map[string]any
	for _, into := range []*map[string]any{&first, &second} {
		out, errOut, code := runCLI(t, "clock", "--db", db, "--node", "east-1")
		if code != 0 {
			t.Fatalf("clock exited %d: %s", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), into); err != nil {
			t.Fatalf("clock output is not JSON: %v\n%s", err, out)
		}
	}
	ts1, err1 := hlc.Parse(first["timestamp"].(string))
	ts2, err2 := hlc.Parse(second["timestamp"].(string))
	if err1 != nil || err2 != nil || !ts2.After(ts1) {
		t.Fatalf("second run's timestamp %v does not follow the first's %v (%v, %v)", ts2, ts1, err1, err2)
	}
	if second["stored_bound_before"].(float64) != first["stored_bound_after"].(float64) {
		t.Fatalf("second run did not load the bound the first persisted: %v vs %v", second["stored_bound_before"], first["stored_bound_after"])
	}
}

func TestBadInputExitsNonZeroWithAClearError(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "--db", "mysql://localhost/x"}, "want postgres://... or sqlite:PATH"},
		{[]string{"migrate", "--db", "sqlite:"}, "want sqlite:PATH"},
		{[]string{"clock", "--db", "sqlite:" + filepath.Join(t.TempDir(), "o.db"), "--node", "bad node"}, "Ordo:NodeId = \"bad node\""},
		{[]string{"nosuchcommand"}, "unknown command"},
	}
	for _, c := range cases {
		_, errOut, code := runCLI(t, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("ordo %v: exit %d, stderr %q; want non-zero and %q", c.args, code, errOut, c.want)
		}
	}
}

// The guide's YAML decides the mode of every command, and a flag the user
// sets wins over it.
func TestCommandsReadTheGuidesConfiguration(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ordo.yaml")
	yaml := "Scheduler:\n  Queue:\n    Hlc:\n      EnableHlcOrdering: true\n      DualWriteMode: false\nOrdo:\n  NodeId: east-1\n  Database:\n    Url: sqlite:" + filepath.Join(dir, "ordo.db") + "\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "enqueue", "--config", file, "--tenant", "acme", "--kind", "k", "--payload", `{"a":1}`)
	var res map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["mode"] != "hlc-only" || res["t_hlc"] == nil {
		t.Fatalf("enqueue with the file: exit %d, %s%s", code, out, errOut)
	}
	if ts, err := hlc.Parse(res["t_hlc"].(string)); err != nil || ts.Node != "east-1" {
		t.Fatalf("t_hlc %v does not carry the configured node id: %v", res["t_hlc"], err)
	}
	out, _, code = runCLI(t, "enqueue", "--config", file, "--tenant", "acme", "--kind", "k", "--payload", `{"a":2}`, "--enable-hlc-ordering=false")
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res["mode"] != "legacy" {
		t.Fatalf("a flag must override the file: %s", out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("Scheduler:\n  Queue:\n    Hlc:\n      MaxClockDriftMs: -5\n      EnableHlcOrderin: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, "migrate", "status", "--config", bad)
	if code == 0 || !strings.Contains(errOut, "MaxClockDriftMs") || !strings.Contains(errOut, "EnableHlcOrderin") {
		t.Fatalf("a bad file must be refused naming every problem: exit %d, %s", code, errOut)
	}
}

// Every command's --help shows an example.
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Name() != "help" && c.Name() != "completion" && c.Example == "" {
			t.Errorf("ordo %s has no example in its --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
}
