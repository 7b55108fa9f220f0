package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"go.yaml.in/yaml/v3"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/service"
)

const (
	rulesFile     = "prometheus/ordo-rules.yml"
	dashboardFile = "grafana/ordo-dashboard.json"
	unitFile      = "systemd/ordo.service"
	// docsURL is where runbook links point; what follows it is a path in
	// this repository.
	docsURL = "https://github.com/ordo-sched/ordo/blob/main/"
	// unitBinary is the unit's ExecStart binary, replaced in the copy the
	// test verifies.
	unitBinary = "/usr/local/bin/ordo"
	// maxExposure is the highest `systemd-analyze security` exposure level
	// (0 safest, 10 unsafe) the unit may have; it had 1.2 when written.
	maxExposure = 2.0
	// testVersion is the release version the tests give make build.
	testVersion = "v0.0.0-deploytest"
)

// targetLabels are the labels Prometheus gives every series it scrapes;
// /metrics itself does not show them.
var targetLabels = []string{"job", "instance"}

// grafanaBuiltins are Grafana's own variables, which a dashboard does not
// define.
var grafanaBuiltins = []string{"__rate_interval", "__interval", "__range"}

var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// ordoBinary builds the ordo binary once per test process with
// `make build`, as a release is built, with testVersion, static
// (CGO_ENABLED=0) and with Go's time zone database, as make container
// builds it.
func ordoBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "ordo-deploy-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "ordo")
		// Static, as make container builds it, so that the container
		// test can run this binary too.
		cmd := exec.Command("make", "-s", "-C", "..", "build", "VERSION="+testVersion, "BUILD_TAGS=timetzdata", "BIN="+binPath)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var out []byte
		if out, buildErr = cmd.CombinedOutput(); buildErr != nil {
			buildErr = fmt.Errorf("make build: %v\n%s", buildErr, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// rule is one rule of a Prometheus rule file.
type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return out
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Panels      []panel `json:"panels"` // a row's, when collapsed
	Targets     []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// queryPanels are the dashboard's panels that query (rows' nested ones
// included).
func (d dashboard) queryPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

// exposition is what a /metrics page exposes: each series name with the
// label names it carries.
type exposition map[string]map[string]bool

func parseExposition(page string) exposition {
	e := exposition{}
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// name{label="value",...} value, or name value; a label value
		// may hold spaces and braces, the sample value holds neither.
		name, labels := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if end := strings.LastIndex(line, "}"); strings.HasPrefix(line[len(name):], "{") && end > len(name) {
			labels = line[len(name)+1 : end]
		}
		if e[name] == nil {
			e[name] = map[string]bool{}
		}
		for _, l := range matcherLabels([]rune(labels)) {
			e[name][l] = true
		}
	}
	return e
}

// liveMetrics starts an ordo service (the one ordo serve runs, on SQLite,
// its HTTP API on a loopback test server), gives it the traffic that makes
// every series appear (enqueues, a dequeue, a completion, a failure, a
// verification, a job left pending), and returns what its /metrics
// exposes then.
func liveMetrics(t *testing.T) exposition {
	t.Helper()
	e, err := scrape(t)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// withAWitness gives the service a signing key and one witness, so that
// ordo_witness_submissions_total, which the rules read, is exposed as in a
// deployment with witnesses (each configured witness's series start at
// 0). The witness is a server of the test's own on loopback that refuses
// every checkpoint: whether the service submits one during the scrape
// does not matter here.
func withAWitness(t *testing.T, cfg *config.Config) error {
	priv, _, err := audit.GenerateKey(rand.Reader, "deploy-test")
	if err != nil {
		return err
	}
	keyFile := filepath.Join(t.TempDir(), "node.key")
	if err := os.WriteFile(keyFile, []byte(priv), 0o600); err != nil {
		return err
	}
	_, witnessPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := torchwood.NewCosignatureSigner("witness.deploy.test", witnessPriv)
	if err != nil {
		return err
	}
	witness := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "unknown log", http.StatusNotFound)
	}))
	t.Cleanup(witness.Close)
	cfg.Ordo.Audit.SigningKeyFile = keyFile
	cfg.Ordo.Audit.Witnesses = []config.Witness{{URL: witness.URL + "/", Key: signer.Verifier().String()}}
	return nil
}

func scrape(t *testing.T) (exposition, error) {
	dbURL := testdb.SQLiteURL(t)
	cfg := servicetest.Config(dbURL)
	if err := withAWitness(t, cfg); err != nil {
		return nil, err
	}
	svc, err := service.New(context.Background(), cfg, service.Options{Wall: servicetest.Wall(), LogOutput: io.Discard})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(svc.Handler())
	defer func() {
		srv.Close()
		_ = svc.Shutdown(context.Background())
	}()
	call := func(method, path string, body any, want int) (map[string]any, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+servicetest.AdminToken)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			return nil, fmt.Errorf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
		}
		m := map[string]any{}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("%s %s: %v", method, path, err)
			}
		}
		m["raw"] = string(raw)
		return m, nil
	}
	for i := range 3 {
		if _, err := call("POST", "/v1/tenants/acme/jobs", map[string]any{"kind": "deploy.test", "payload": map[string]any{"n": i}}, http.StatusCreated); err != nil {
			return nil, err
		}
	}
	got, err := call("POST", "/v1/tenants/acme/dequeue", map[string]any{"limit": 2}, http.StatusOK)
	if err != nil {
		return nil, err
	}
	jobs, _ := got["jobs"].([]any)
	if len(jobs) != 2 {
		return nil, fmt.Errorf("dequeue leased %d jobs, want 2: %s", len(jobs), got["raw"])
	}
	for i, j := range jobs {
		job := j.(map[string]any)
		path, body := "/complete", map[string]any{"lease_token": job["lease_token"]}
		if i == 1 {
			path, body["error"], body["retry"] = "/fail", "deploy test", false
		}
		if _, err := call("POST", "/v1/tenants/acme/jobs/"+job["job_id"].(string)+path, body, http.StatusOK); err != nil {
			return nil, err
		}
	}
	if _, err := call("POST", "/v1/tenants/acme/verify", map[string]any{}, http.StatusOK); err != nil {
		return nil, err
	}
	page, err := call("GET", "/metrics", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	e := parseExposition(page["raw"].(string))
	if !e["ordo_jobs"]["tenant"] {
		return nil, fmt.Errorf("the job left pending is not in ordo_jobs:\n%s", servicetest.MetricLines(page["raw"].(string), "ordo_jobs"))
	}
	return e, nil
}

// checkExpr reports every selector of expr that names a metric the live
// service does not expose (or a recording rule not in recorded), or
// matches on a label that metric does not carry.
func checkExpr(t *testing.T, where, expr string, e exposition, recorded []string) {
	t.Helper()
	sels := selectors(expr)
	if len(sels) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, s := range sels {
		if strings.Contains(s.Metric, ":") {
			if !slices.Contains(recorded, s.Metric) {
				t.Errorf("%s: %s is no recording rule of %s", where, s.Metric, rulesFile)
			}
			continue
		}
		labels, ok := e[s.Metric]
		if !ok {
			t.Errorf("%s: ordo serve exposes no %s (expression %q)", where, s.Metric, expr)
			continue
		}
		for _, l := range s.Labels {
			if !labels[l] && !slices.Contains(targetLabels, l) {
				t.Errorf("%s: %s has no label %q (expression %q)", where, s.Metric, l, expr)
			}
		}
	}
}

func TestRulesNameExposedMetrics(t *testing.T) {
	e := liveMetrics(t)
	rules := loadRules(t)
	var recorded []string
	for _, r := range rules {
		if r.Record != "" {
			recorded = append(recorded, r.Record)
		}
	}
	for _, r := range rules {
		checkExpr(t, r.Record+r.Alert, r.Expr, e, recorded)
	}
}

func TestDashboardNamesExposedMetrics(t *testing.T) {
	e := liveMetrics(t)
	d := loadDashboard(t)
	vars := slices.Clone(grafanaBuiltins)
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValuesRE.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		checkExpr(t, "variable "+v.Name, m[1]+"{"+m[2]+"=\"\"}", e, nil)
	}
	for _, want := range []string{"instance", "tenant"} {
		if !slices.Contains(vars, want) {
			t.Errorf("the dashboard has no $%s variable", want)
		}
	}
	varRE := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	panels := d.queryPanels()
	if len(panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	ids := map[int]bool{}
	for _, p := range panels {
		where := fmt.Sprintf("panel %q", p.Title)
		if ids[p.ID] {
			t.Errorf("%s: id %d used twice", where, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Description == "" || len(p.Targets) == 0 {
			t.Errorf("%s (id %d): a panel needs a title, a description and a query", where, p.ID)
		}
		for _, tg := range p.Targets {
			checkExpr(t, where, tg.Expr, e, nil)
			for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
				if !slices.Contains(vars, m[1]) {
					t.Errorf("%s: $%s is no variable of the dashboard", where, m[1])
				}
			}
			// Per node, or per tenant where the series has a tenant.
			perTenant := slices.ContainsFunc(selectors(tg.Expr), func(s selector) bool { return e[s.Metric]["tenant"] })
			if want := map[bool]string{false: `instance=~"$instance"`, true: `tenant=~"$tenant"`}[perTenant]; !strings.Contains(tg.Expr, want) {
				t.Errorf("%s: %q does not select %s", where, tg.Expr, want)
			}
		}
	}
}

// headingAnchors returns the anchors GitHub gives the headings of a
// Markdown file (fenced code blocks excluded).
func headingAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !strings.HasPrefix(line, "#") || !ok {
			continue
		}
		var slug strings.Builder
		for _, c := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case c == ' ':
				slug.WriteRune('-')
			case c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c > 127:
				slug.WriteRune(c)
			}
		}
		s := slug.String()
		for n := 1; out[s]; n++ {
			s = slug.String() + "-" + strconv.Itoa(n)
		}
		out[s] = true
	}
	return out
}

func TestAlertsHaveRunbooksThatResolve(t *testing.T) {
	if a := headingAnchors(t, "../docs/migration-guide.md"); !a["phase-3-hlc-ordering-for-reads"] || a["ordoyaml"] {
		t.Fatalf("headingAnchors reads docs/migration-guide.md wrongly: %v", a)
	}
	alerts := 0
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: no summary or description", r.Alert)
		}
		u := r.Annotations["runbook_url"]
		path, anchor, ok := strings.Cut(strings.TrimPrefix(u, docsURL), "#")
		if !strings.HasPrefix(u, docsURL) || !ok || !strings.HasPrefix(path, "docs/") {
			t.Errorf("%s: runbook_url %q is not %sdocs/FILE.md#SECTION", r.Alert, u, docsURL)
			continue
		}
		if !headingAnchors(t, filepath.Join("..", path))[anchor] {
			t.Errorf("%s: %s has no heading for #%s", r.Alert, path, anchor)
		}
	}
	if alerts == 0 {
		t.Fatal("no alerts")
	}
}

func TestMakeBuildStampsTheVersion(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Second)
	out, err := exec.Command(ordoBinary(t), "version").Output()
	if err != nil {
		t.Fatalf("ordo version: %v", err)
	}
	head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	fields := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		fields[k] = strings.TrimSpace(v)
	}
	if lines[0] != "ordo "+testVersion {
		t.Errorf("first line %q, want %q", lines[0], "ordo "+testVersion)
	}
	if c, h := fields["commit"], strings.TrimSpace(string(head)); c != h && c != h+"+modified" {
		t.Errorf("commit %q, want %s", c, h)
	}
	// The binary may have been built by an earlier test of this process,
	// so only a date that cannot be the build's fails.
	if built, err := time.Parse(time.RFC3339, fields["built"]); err != nil || built.After(before.Add(time.Minute)) {
		t.Errorf("built %q: not a build date (%v)", fields["built"], err)
	}
	if !strings.HasPrefix(fields["go"], runtime.Version()+" ") {
		t.Errorf("go %q, want %s", fields["go"], runtime.Version())
	}
	if t.Failed() {
		t.Logf("ordo version printed:\n%s", out)
	}
}

// verifyUnit runs systemd-analyze verify on unit with its ExecStart binary
// replaced by bin, and returns what it printed.
func verifyUnit(t *testing.T, unit, bin string) (string, error) {
	t.Helper()
	const analyze = "/usr/bin/systemd-analyze"
	if _, err := os.Stat(analyze); err != nil {
		t.Fatalf("%s is needed to check %s (apt-get install systemd): %v", analyze, unitFile, err)
	}
	out, err := exec.Command(analyze, "verify", writeUnit(t, unit, bin)).CombinedOutput()
	return string(out), err
}

// writeUnit writes unit, its ExecStart binary replaced by bin, to a
// temporary file and returns its path.
func writeUnit(t *testing.T, unit, bin string) string {
	t.Helper()
	line := "\nExecStart=" + unitBinary + " "
	if strings.Count(unit, line) != 1 {
		t.Fatalf("%s has %d lines starting %q, want one", unitFile, strings.Count(unit, line), line[1:])
	}
	path := filepath.Join(t.TempDir(), "ordo.service")
	if err := os.WriteFile(path, []byte(strings.Replace(unit, line, "\nExecStart="+bin+" ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	bin := ordoBinary(t)
	if out, err := verifyUnit(t, unit, bin); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}
	// verify exits 0 on an unknown key, and says so: the output must be
	// empty, as above.
	if out, _ := verifyUnit(t, strings.Replace(unit, "ProtectSystem=", "ProtectSytem=", 1), bin); !strings.Contains(out, "ProtectSytem") {
		t.Fatalf("systemd-analyze verify did not report a misspelled key:\n%s", out)
	}
	for _, d := range []string{"DynamicUser=yes", "StateDirectory=ordo", "WorkingDirectory=/var/lib/ordo", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, "\n"+d) {
			t.Errorf("%s lacks %s", unitFile, strings.TrimSpace(d))
		}
	}
	out, err := exec.Command("/usr/bin/systemd-analyze", "security", "--offline=yes", writeUnit(t, unit, bin)).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for ordo\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > maxExposure {
		t.Errorf("exposure level %.1f, above %.1f:\n%s", level, maxExposure, out)
	}
}

// TestEveryAlertIsUnitTested: each alert fires in at least one of
// promtool's unit tests (make prom-rules runs them).
func TestEveryAlertIsUnitTested(t *testing.T) {
	files, err := filepath.Glob("prometheus/*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no prometheus/*_test.yml (%v)", err)
	}
	fired := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tests struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string           `yaml:"alertname"`
					ExpAlerts []map[string]any `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(b, &tests); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range tests.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fired[a.Alertname] = true
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if r.Alert != "" && !fired[r.Alert] {
			t.Errorf("%s never fires in %v", r.Alert, files)
		}
	}
}
