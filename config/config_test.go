package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
)

func host(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ordo.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, yaml string, env []string, overrides ...config.Override) (*config.Config, error) {
	t.Helper()
	src := config.Source{Environ: env, Overrides: overrides, Hostname: host("node-1.example.com")}
	if yaml != "" {
		src.File = writeFile(t, yaml)
	}
	return config.Load(src)
}

func mustLoad(t *testing.T, yaml string, env []string, overrides ...config.Override) *config.Config {
	t.Helper()
	cfg, err := load(t, yaml, env, overrides...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// The guide's snippets, verbatim, comments included.
func TestGuideSnippetsLoadVerbatim(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want queue.Options
	}{
		{"phase 1", `# appsettings.yaml or environment configuration
Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: false  # Keep using legacy ordering for reads
      DualWriteMode: true       # Write to both legacy and HLC tables
`, queue.Options{DualWriteMode: true, MaxClockDriftMs: 60000}},
		{"phase 3", `Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: true   # Use HLC ordering for reads
      DualWriteMode: true       # Keep dual-write during transition
      VerifyOnDequeue: false    # Optional: enable for extra validation
`, queue.Options{EnableHlcOrdering: true, DualWriteMode: true, MaxClockDriftMs: 60000}},
		{"phase 4", `Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: true
      DualWriteMode: false      # Stop writing to legacy table
      VerifyOnDequeue: false
`, queue.Options{EnableHlcOrdering: true, MaxClockDriftMs: 60000}},
		{"rollback", `Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: false
      DualWriteMode: false
`, queue.Options{MaxClockDriftMs: 60000}},
		{"every option", `Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: true
      DualWriteMode: true
      VerifyOnDequeue: true
      MaxClockDriftMs: 5000
`, queue.Options{EnableHlcOrdering: true, DualWriteMode: true, VerifyOnDequeue: true, MaxClockDriftMs: 5000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, c.yaml, nil)
			if got := cfg.Scheduler.Queue.Hlc.QueueOptions(); got != c.want {
				t.Fatalf("options = %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, "", nil)
	want := config.Defaults()
	want.Ordo.NodeId = "node-1" // the host name's first label
	if !reflect.DeepEqual(cfg.Ordo, want.Ordo) || cfg.Scheduler != want.Scheduler {
		t.Fatalf("defaults:\n got %+v\nwant %+v", cfg.Ordo, want.Ordo)
	}
	if cfg.Ordo.Http.Listen != "127.0.0.1:8080" || cfg.Ordo.Database.Url != "sqlite:ordo.db" {
		t.Fatalf("listen %q, url %q", cfg.Ordo.Http.Listen, cfg.Ordo.Database.Url)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	file := `Scheduler:
  Queue:
    Hlc:
      DualWriteMode: true
      MaxClockDriftMs: 1000
Ordo:
  NodeId: from-file
  Database:
    Url: sqlite:file.db
  Http:
    Listen: 127.0.0.1:9000
`
	cases := []struct {
		name      string
		env       []string
		overrides []config.Override
		check     func(t *testing.T, c *config.Config)
	}{
		{"file alone", nil, nil, func(t *testing.T, c *config.Config) {
			if c.Ordo.NodeId != "from-file" || c.Ordo.Database.Url != "sqlite:file.db" || c.Scheduler.Queue.Hlc.MaxClockDriftMs != 1000 {
				t.Fatalf("%+v", c.Ordo)
			}
		}},
		{".NET-style variables override the file", []string{
			"Scheduler__Queue__Hlc__EnableHlcOrdering=true",
			"SCHEDULER__QUEUE__HLC__MAXCLOCKDRIFTMS=2500", // any case, as .NET
			"Ordo__Http__Listen=0.0.0.0:8081",
			"PATH=/usr/bin", "ORDO_TEST_DATABASE_URL=ignored", // not configuration
		}, nil, func(t *testing.T, c *config.Config) {
			h := c.Scheduler.Queue.Hlc
			if !h.EnableHlcOrdering || !h.DualWriteMode || h.MaxClockDriftMs != 2500 || c.Ordo.Http.Listen != "0.0.0.0:8081" {
				t.Fatalf("%+v %+v", h, c.Ordo.Http)
			}
		}},
		{"ORDO_DATABASE_URL overrides the file", []string{"ORDO_DATABASE_URL=sqlite:env.db"}, nil, func(t *testing.T, c *config.Config) {
			if c.Ordo.Database.Url != "sqlite:env.db" {
				t.Fatal(c.Ordo.Database.Url)
			}
		}},
		{"Ordo__Database__Url wins over ORDO_DATABASE_URL", []string{"Ordo__Database__Url=sqlite:long.db", "ORDO_DATABASE_URL=sqlite:short.db"}, nil,
			func(t *testing.T, c *config.Config) {
				if c.Ordo.Database.Url != "sqlite:long.db" {
					t.Fatal(c.Ordo.Database.Url)
				}
			}},
		{"flags override everything", []string{"ORDO_DATABASE_URL=sqlite:env.db", "Ordo__NodeId=from-env"},
			[]config.Override{{Key: "Ordo:Database:Url", Value: "sqlite:flag.db", Origin: "flag --db"}, {Key: "Ordo:NodeId", Value: "from-flag", Origin: "flag --node"}},
			func(t *testing.T, c *config.Config) {
				if c.Ordo.Database.Url != "sqlite:flag.db" || c.Ordo.NodeId != "from-flag" {
					t.Fatalf("%+v", c.Ordo)
				}
			}},
		{"lists from variables, by index or comma-separated", []string{
			"Ordo__Auth__Tokens__0__Tenant=acme",
			"Ordo__Auth__Tokens__0__Sha256=" + strings.Repeat("ab", 32),
			"Ordo__Auth__Tokens__1__Admin=true",
			"Ordo__Auth__Tokens__1__Sha256=" + strings.Repeat("cd", 32),
			"Ordo__Worker__HttpKind__AllowedHosts=api.example.com, *.example.org",
			"Ordo__Demo__Tenants__0=t1", "Ordo__Demo__Tenants__1=t2",
		}, nil, func(t *testing.T, c *config.Config) {
			toks := c.Ordo.Auth.Tokens
			if len(toks) != 2 || toks[0].Tenant != "acme" || toks[0].Admin || !toks[1].Admin {
				t.Fatalf("tokens %+v", toks)
			}
			if got := c.Ordo.Worker.HttpKind.AllowedHosts; !reflect.DeepEqual(got, []string{"api.example.com", "*.example.org"}) {
				t.Fatalf("hosts %q", got)
			}
			if got := c.Ordo.Demo.Tenants; !reflect.DeepEqual(got, []string{"t1", "t2"}) {
				t.Fatalf("tenants %q", got)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, mustLoad(t, file, c.env, c.overrides...))
		})
	}
}

func TestKeysAreCaseInsensitive(t *testing.T) {
	cfg := mustLoad(t, `scheduler:
  queue:
    hlc:
      enableHlcOrdering: true
ORDO:
  nodeid: lower-case
`, nil)
	if !cfg.Scheduler.Queue.Hlc.EnableHlcOrdering || cfg.Ordo.NodeId != "lower-case" {
		t.Fatalf("%+v", cfg)
	}
}

// TestInvalidConfiguration: every bad value is reported, with its key, its
// value, where it came from and what is allowed.
func TestInvalidConfiguration(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  []string
		want []string // each must appear in the error
	}{
		{"drift zero", "Scheduler: {Queue: {Hlc: {MaxClockDriftMs: 0}}}", nil,
			[]string{"Scheduler:Queue:Hlc:MaxClockDriftMs = 0", "want 1..86400000"}},
		{"drift too large", "Scheduler: {Queue: {Hlc: {MaxClockDriftMs: 86400001}}}", nil,
			[]string{"MaxClockDriftMs = 86400001", "want 1..86400000"}},
		{"drift not a number", "Scheduler: {Queue: {Hlc: {MaxClockDriftMs: soon}}}", nil,
			[]string{`MaxClockDriftMs = "soon"`, "want a whole number"}},
		{"bool not a bool", "Scheduler: {Queue: {Hlc: {DualWriteMode: maybe}}}", nil,
			[]string{`Scheduler:Queue:Hlc:DualWriteMode = "maybe"`, "want true or false"}},
		{"bool from a variable", "", []string{"Scheduler__Queue__Hlc__EnableHlcOrdering=yes please"},
			[]string{`Scheduler:Queue:Hlc:EnableHlcOrdering = "yes please" (env Scheduler__Queue__Hlc__EnableHlcOrdering): want true or false`}},
		{"unknown key in the file", "Scheduler: {Queue: {Hlc: {EnableHlcOrderin: true}}}", nil,
			[]string{"Scheduler:Queue:Hlc:EnableHlcOrderin", "unknown key", "EnableHlcOrdering, DualWriteMode, VerifyOnDequeue, MaxClockDriftMs"}},
		{"unknown top-level key", "Shceduler: {}", nil, []string{"Shceduler", "unknown key", "Scheduler, Ordo"}},
		{"unknown key in a variable", "", []string{"Ordo__Http__Lisen=:80"},
			[]string{"Ordo:Http:Lisen (env Ordo__Http__Lisen): unknown key"}},
		{"unknown Scheduler variable", "", []string{"Scheduler__Queue__BatchSize=10"},
			[]string{"Scheduler:Queue:BatchSize (env Scheduler__Queue__BatchSize): unknown key"}},
		{"malformed variable name", "", []string{"Ordo____NodeId=x"}, []string{"env Ordo____NodeId", "two underscores"}},
		{"three underscores", "", []string{"Ordo___NodeId=x"}, []string{"Ordo:_NodeId (env Ordo___NodeId): unknown key"}},
		{"key given twice in different case", "Ordo: {NodeId: a, nodeid: b}", nil, []string{"given twice"}},
		{"section given a value", "Ordo: {Http: 8080}", nil, []string{"Ordo:Http = 8080", "want a section"}},
		{"bad node id", "Ordo: {NodeId: 'node 1'}", nil, []string{`Ordo:NodeId = "node 1"`, "A-Z a-z 0-9"}},
		{"bad database URL", "Ordo: {Database: {Url: 'mysql://u:secret@h/db'}}", nil,
			[]string{`Ordo:Database:Url = "mysql://u:xxxxx@h/db"`, "want postgres://... or sqlite:PATH"}},
		{"empty sqlite path", "Ordo: {Database: {Url: 'sqlite:'}}", nil, []string{"want sqlite:PATH"}},
		{"bad listen address", "Ordo: {Http: {Listen: 'localhost'}}", nil, []string{`Ordo:Http:Listen = "localhost"`, "want host:port"}},
		{"port out of range", "Ordo: {Http: {Listen: ':70000'}}", nil, []string{"Ordo:Http:Listen", "want host:port"}},
		{"payload limit", "Ordo: {Http: {MaxPayloadBytes: 0}}", nil, []string{"Ordo:Http:MaxPayloadBytes = 0", "want 1..67108864"}},
		{"body smaller than payload", "Ordo: {Http: {MaxPayloadBytes: 2048, MaxBodyBytes: 1024}}", nil,
			[]string{"Ordo:Http:MaxBodyBytes = 1024", "want Ordo:Http:MaxPayloadBytes (2048).."}},
		{"bad duration", "Ordo: {Worker: {LeaseFor: 30}}", nil, []string{"Ordo:Worker:LeaseFor = 30", "want a duration"}},
		{"lease too short", "Ordo: {Worker: {LeaseFor: 10ms}}", nil, []string{"Ordo:Worker:LeaseFor = 10ms", "want 1s..24h0m0s"}},
		{"token without tenant", "Ordo: {Auth: {Tokens: [{Sha256: " + strings.Repeat("a", 64) + "}]}}", nil,
			[]string{"Ordo:Auth:Tokens:0:Tenant", "want a tenant id, or Admin: true"}},
		{"token with both", "Ordo: {Auth: {Tokens: [{Tenant: acme, Admin: true, Sha256: " + strings.Repeat("a", 64) + "}]}}", nil,
			[]string{"Ordo:Auth:Tokens:0:Tenant", "no tenant on an admin token"}},
		{"token bad hash", "Ordo: {Auth: {Tokens: [{Tenant: acme, Sha256: abc}]}}", nil,
			[]string{`Ordo:Auth:Tokens:0:Sha256 = "abc"`, "64 hex digits"}},
		{"token unknown field", "Ordo: {Auth: {Tokens: [{Tenant: acme, Sha256: " + strings.Repeat("a", 64) + ", Role: x}]}}", nil,
			[]string{"Ordo:Auth:Tokens:0:Role", "unknown key", "Name, Tenant, Admin, Sha256"}},
		{"duplicate token hash", "Ordo: {Auth: {Tokens: [{Tenant: a, Sha256: " + strings.Repeat("a", 64) + "}, {Tenant: b, Sha256: " + strings.Repeat("a", 64) + "}]}}", nil,
			[]string{"Ordo:Auth:Tokens:1:Sha256", "Ordo:Auth:Tokens:0 has it"}},
		{"bad host pattern", "Ordo: {Worker: {HttpKind: {AllowedHosts: ['https://api.example.com/x']}}}", nil,
			[]string{"Ordo:Worker:HttpKind:AllowedHosts:0", "no scheme or path"}},
		{"retention too short", "Ordo: {Retention: {Failed: 30s}}", nil, []string{"Ordo:Retention:Failed = 30s", "want 0 (keep forever) or 1m0s.."}},
		{"negative retention", "Ordo: {Retention: {Succeeded: -1h}}", nil, []string{"Ordo:Retention:Succeeded = -1h0m0s", "want 0 (keep forever)"}},
		{"demo rate", "Ordo: {Demo: {Rate: 0}}", nil, []string{"Ordo:Demo:Rate = 0", "more than 0"}},
		{"demo tenant", "Ordo: {Demo: {Tenants: ['bad tenant']}}", nil, []string{`Ordo:Demo:Tenants:0 = "bad tenant"`}},
		{"log level", "Ordo: {Log: {Level: loud}}", nil, []string{`Ordo:Log:Level = "loud"`, "want debug, info, warn or error"}},
		{"missing key file", "Ordo: {Audit: {PublicKeyFile: /nonexistent/key.pub}}", nil, []string{"Ordo:Audit:PublicKeyFile", "readable file"}},
		{"malformed witness key", "Ordo: {Audit: {Witnesses: [{URL: 'http://127.0.0.1:7380', Key: 'witness.example+zz+AAAA'}]}}", nil,
			[]string{`Ordo:Audit:Witnesses:0:Key = "witness.example+zz+AAAA"`, "want the witness's verifier key", "8 hex digits"}},
		{"witness URL", "Ordo: {Audit: {Witnesses: [{URL: 'ftp://w', Key: 'w.example+41aab8ed+BIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c'}]}}", nil,
			[]string{`Ordo:Audit:Witnesses:0:URL = "ftp://w"`, "want the witness's http or https URL"}},
		{"witnesses without a signing key", "Ordo: {Audit: {Witnesses: [{URL: 'http://w', Key: 'w.example+41aab8ed+BIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c'}]}}", nil,
			[]string{"Ordo:Audit:Witnesses", "needs Ordo:Audit:SigningKeyFile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, c.env)
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load error = %v, want a *config.Error", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if c.yaml != "" && !strings.Contains(err.Error(), "(file ") && c.env == nil {
				t.Errorf("error does not say the value came from the file:\n%v", err)
			}
		})
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, err := load(t, `Scheduler:
  Queue:
    Hlc:
      MaxClockDriftMs: -1
      Unknown: 1
Ordo:
  NodeId: "bad id"
  Http:
    Listen: nowhere
  Worker:
    MaxWorkers: 0
`, []string{"Ordo__Log__Level=shout"})
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	keys := map[string]bool{}
	for _, p := range ce.Problems {
		keys[p.Key] = true
	}
	for _, k := range []string{"Scheduler:Queue:Hlc:MaxClockDriftMs", "Scheduler:Queue:Hlc:Unknown", "Ordo:NodeId", "Ordo:Http:Listen", "Ordo:Worker:MaxWorkers", "Ordo:Log:Level"} {
		if !keys[k] {
			t.Errorf("problem with %s not reported; got:\n%v", k, err)
		}
	}
	if len(ce.Problems) != 6 || !strings.HasPrefix(err.Error(), "invalid configuration: 6 problems:") {
		t.Errorf("want exactly 6 problems, in one message:\n%v", err)
	}
}

func TestNodeIDDefaultsToTheHostName(t *testing.T) {
	for _, c := range []struct {
		host, want, errWant string
	}{
		{"web-3.prod.example.com", "web-3", ""},
		{"plain", "plain", ""},
		{"_bad", "", `Ordo:NodeId = "_bad" (host name)`},
	} {
		cfg, err := config.Load(config.Source{Hostname: host(c.host)})
		if c.errWant != "" {
			if err == nil || !strings.Contains(err.Error(), c.errWant) {
				t.Errorf("host %q: err = %v, want %q", c.host, err, c.errWant)
			}
			continue
		}
		if err != nil || cfg.Ordo.NodeId != c.want {
			t.Errorf("host %q: node id %v, %v; want %q", c.host, cfg, err, c.want)
		}
	}
}

func TestNodeOptional(t *testing.T) {
	// A host name that is no node id does not stop commands that need none.
	cfg, err := config.Load(config.Source{Hostname: host("_bad"), NodeOptional: true})
	if err != nil || cfg.Ordo.NodeId != "" {
		t.Fatalf("NodeOptional with a bad host name: %v, %v", cfg, err)
	}
	cfg, err = config.Load(config.Source{Hostname: host("good.example"), NodeOptional: true})
	if err != nil || cfg.Ordo.NodeId != "good" {
		t.Fatalf("NodeOptional with a good host name: %v, %v", cfg, err)
	}
	// A node id that is given must be valid all the same.
	_, err = config.Load(config.Source{Hostname: host("h"), NodeOptional: true,
		Overrides: []config.Override{{Key: "Ordo:NodeId", Value: "bad node", Origin: "flag --node"}}})
	if err == nil || !strings.Contains(err.Error(), `Ordo:NodeId = "bad node" (flag --node)`) {
		t.Fatalf("bad --node with NodeOptional: %v", err)
	}
}

func TestUnreadableOrMalformedFile(t *testing.T) {
	if _, err := config.Load(config.Source{File: filepath.Join(t.TempDir(), "missing.yaml"), Hostname: host("h")}); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := load(t, "Scheduler: [unclosed", nil); err == nil || !strings.Contains(err.Error(), "not valid YAML") {
		t.Fatalf("malformed YAML: %v", err)
	}
}

func TestDiffSaysWhatNeedsARestart(t *testing.T) {
	a := mustLoad(t, "", nil)
	b := mustLoad(t, `Scheduler: {Queue: {Hlc: {EnableHlcOrdering: true, MaxClockDriftMs: 100}}}
Ordo:
  Http: {Listen: "127.0.0.1:9999"}
  Worker: {HttpKind: {AllowedHosts: [x.example]}}
`, nil)
	live, restart := config.Diff(a, b)
	if want := []string{"Scheduler:Queue:Hlc:EnableHlcOrdering", "Scheduler:Queue:Hlc:MaxClockDriftMs", "Ordo:Worker:HttpKind:AllowedHosts"}; !reflect.DeepEqual(live, want) {
		t.Errorf("live = %q, want %q", live, want)
	}
	if want := []string{"Ordo:Http:Listen"}; !reflect.DeepEqual(restart, want) {
		t.Errorf("restart = %q, want %q", restart, want)
	}
	for _, k := range config.Keys() {
		if strings.HasPrefix(k.Key, "Scheduler:Queue:Hlc:") != k.Live && k.Key != "Ordo:Auth:Tokens" && k.Key != "Ordo:Worker:HttpKind:AllowedHosts" && k.Key != "Ordo:Http:MetricsAuth" {
			t.Errorf("key %s live=%v", k.Key, k.Live)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h/db":   "postgres://u:xxxxx@h/db",
		"postgres://u@h/db":          "postgres://u@h/db",
		"sqlite:ordo.db":             "sqlite:ordo.db",
		"postgres://h/db?x=a@b":      "postgres://h/db?x=a@b",
		"postgresql://a:b:c@h:5432/": "postgresql://a:xxxxx@h:5432/",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWatcherReloadsOnChangeAndTrigger(t *testing.T) {
	path := writeFile(t, "Scheduler: {Queue: {Hlc: {DualWriteMode: true}}}\n")
	src := config.Source{File: path, Hostname: host("h")}
	cfg, err := config.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	type reload struct {
		cfg *config.Config
		err error
	}
	got := testsignal.New[reload]()
	w := &config.Watcher{Source: src, Interval: 5 * time.Millisecond, OnReload: func(c *config.Config, err error) {
		got.Record(reload{c, err})
	}}
	ctx, cancel := context.WithCancel(context.Background())
	trigger := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx, cfg, trigger) }()
	defer func() { cancel(); <-done }()

	// awaitReloads returns the reloads so far once there are n.
	awaitReloads := func(n int) []reload {
		t.Helper()
		seen := 0
		got.Await(t, fmt.Sprintf("reload %d", n), func(reload) bool { seen++; return seen == n })
		return got.All(nil)
	}

	if err := os.WriteFile(path, []byte("Scheduler: {Queue: {Hlc: {DualWriteMode: true, EnableHlcOrdering: true}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := awaitReloads(1)
	if r[0].err != nil || !r[0].cfg.Scheduler.Queue.Hlc.EnableHlcOrdering {
		t.Fatalf("first reload: %+v", r[0])
	}
	// A bad file is reported once, and the running configuration stays.
	if err := os.WriteFile(path, []byte("Scheduler: {Queue: {Hlc: {MaxClockDriftMs: -1}}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = awaitReloads(2)
	if r[1].err == nil || !strings.Contains(r[1].err.Error(), "MaxClockDriftMs = -1") {
		t.Fatalf("bad file reload: %+v", r[1])
	}
	// SIGHUP-style trigger: reloads even without a change.
	trigger <- struct{}{}
	r = awaitReloads(3)
	if r[2].err == nil {
		t.Fatalf("triggered reload of the bad file succeeded: %+v", r[2])
	}
	if n := len(got.All(nil)); n != 3 {
		t.Fatalf("the unchanged bad file was reported again: %d reloads", n)
	}
}

// A mode's defaults (serve --demo's HLC ordering) apply only where the
// operator said nothing: the file, the environment and the flags each win.
func TestDefaultsYieldToEverySource(t *testing.T) {
	defaults := []config.Override{
		{Key: "Scheduler:Queue:Hlc:EnableHlcOrdering", Value: true, Origin: "demo"},
		{Key: "Scheduler:Queue:Hlc:DualWriteMode", Value: true, Origin: "demo"},
		{Key: "Scheduler:Queue:Hlc:MaxClockDriftMs", Value: 5000, Origin: "demo"},
		{Key: "Ordo:Demo:Rate", Value: 7, Origin: "demo"},
	}
	src := config.Source{
		File:      writeFile(t, "Scheduler:\n  Queue:\n    Hlc:\n      DualWriteMode: false\n"),
		Environ:   []string{"Scheduler__Queue__Hlc__MaxClockDriftMs=9000"},
		Defaults:  defaults,
		Overrides: []config.Override{{Key: "Ordo:Demo:Rate", Value: 3, Origin: "flag --rate"}},
		Hostname:  host("node-1"),
	}
	cfg, err := config.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Scheduler.Queue.Hlc.QueueOptions()
	want := queue.Options{EnableHlcOrdering: true, DualWriteMode: false, MaxClockDriftMs: 9000}
	if got != want {
		t.Errorf("options = %+v, want %+v (default kept only where nothing else spoke)", got, want)
	}
	if cfg.Ordo.Demo.Rate != 3 {
		t.Errorf("Ordo:Demo:Rate = %v, want the flag's 3", cfg.Ordo.Demo.Rate)
	}

	// A default's bad value is reported under its origin, like any other.
	_, err = config.Load(config.Source{Defaults: []config.Override{{Key: "Scheduler:Queue:Hlc:MaxClockDriftMs", Value: -1, Origin: "demo"}},
		Hostname: host("node-1")})
	if err == nil || !strings.Contains(err.Error(), "(demo)") {
		t.Errorf("bad default: err = %v, want a problem naming its origin (demo)", err)
	}
}
