package dashboard_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/service"
)

// backends runs f once per backend, each on a fresh database.
func backends(t *testing.T, f func(t *testing.T, dbURL string)) { testdb.EachBackend(t, f) }

const (
	acmeToken  = servicetest.AcmeToken
	adminToken = servicetest.AdminToken
)

// env is a started service (its dashboard at URL) and the signing key.
type env struct {
	*servicetest.Node
	key *audit.PrivateKey
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	return newEnvWith(t, dbURL, nil)
}

// newEnvWith is newEnv with the configuration changed by adjust first.
func newEnvWith(t *testing.T, dbURL string, adjust func(*config.Config)) *env {
	t.Helper()
	return newEnvOpts(t, dbURL, adjust, nil)
}

// newEnvOpts is newEnvWith with the service's options changed by opts
// (its Wall is the env's).
func newEnvOpts(t *testing.T, dbURL string, adjust func(*config.Config), opts func(*service.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := audit.GenerateKey(rand.Reader, "test-node")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "node.key")
	if err := os.WriteFile(keyFile, []byte(priv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = pub
	key, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := servicetest.Config(dbURL)
	cfg.Ordo.Audit.SigningKeyFile = keyFile
	cfg.Ordo.Audit.CheckpointInterval = time.Hour // the tests sign checkpoints themselves
	if adjust != nil {
		adjust(cfg)
	}
	wall := servicetest.Wall()
	o := service.Options{Wall: wall, LogOutput: io.Discard}
	if opts != nil {
		opts(&o)
	}
	svc, err := service.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		_ = svc.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return &env{Node: servicetest.NewNode(t, svc, svc.URL(), dbURL, wall), key: key}
}

// exec runs SQL on the raw connection; {p} is the table prefix.
func (e *env) exec(q string, args ...any) {
	e.T.Helper()
	if _, err := e.Raw.Exec(strings.ReplaceAll(q, "{p}", e.Prefix), args...); err != nil {
		e.T.Fatalf("%s: %v", q, err)
	}
}

// api calls the JSON API with a bearer token.
func (e *env) api(method, path, token string, body any) (int, map[string]any) {
	e.T.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// enqueue enqueues one job through the API and returns its id; the wall
// clock moves on a millisecond so every job has its own time.
func (e *env) enqueue(tenant, token string, job map[string]any) string {
	e.T.Helper()
	status, out := e.api("POST", "/v1/tenants/"+tenant+"/jobs", token, job)
	if status != http.StatusCreated {
		e.T.Fatalf("enqueue: %d %v", status, out)
	}
	e.Wall.Advance(time.Millisecond)
	return out["job_id"].(string)
}

// checkpoint signs a checkpoint of every chain that grew.
func (e *env) checkpoint() {
	e.T.Helper()
	as := e.Svc.Queue().Backend().(interface{ AuditStore() driver.AuditStore }).AuditStore()
	cp := &audit.Checkpointer{Store: as, Key: e.key, Now: func() time.Time { return time.UnixMilli(e.Wall.UnixMilli()) }}
	if _, err := cp.RunOnce(context.Background()); err != nil {
		e.T.Fatal(err)
	}
}

// browser is a cookie-keeping HTTP client that does not follow
// redirects, so tests see each answer. (net/http/cookiejar would not send
// the Secure cookie over plain HTTP, which real browsers do on loopback.)
type browser struct {
	e      *env
	cookie string
}

type page struct {
	status   int
	body     string
	location string
	header   http.Header
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.T.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.URL+path, rd)
	if err != nil {
		b.e.T.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.e.URL)
	}
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.e.T.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.T.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "ordo_session" {
			if c.MaxAge < 0 || c.Value == "" {
				b.cookie = ""
			} else {
				b.cookie = c.Name + "=" + c.Value
			}
		}
	}
	return page{status: resp.StatusCode, body: string(body), location: resp.Header.Get("Location"), header: resp.Header}
}

func (b *browser) get(path string) page { b.e.T.Helper(); return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) page {
	b.e.T.Helper()
	return b.do("POST", path, form)
}

// login logs in with token and fails the test unless it worked.
func (e *env) login(token string) *browser {
	e.T.Helper()
	b := &browser{e: e}
	p := b.post("/login", url.Values{"token": {token}})
	if p.status != http.StatusSeeOther || b.cookie == "" {
		e.T.Fatalf("login: %d, cookie %q: %s", p.status, b.cookie, p.body)
	}
	return b
}

// csrf returns the CSRF token of the page's forms.
func csrf(t *testing.T, body string) string {
	t.Helper()
	const marker = `name="csrf" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no CSRF token on the page:\n%s", body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}

func (p page) must(t *testing.T, status int, contains ...string) page {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d (location %q):\n%s", p.status, status, p.location, p.body)
	}
	for _, c := range contains {
		if !strings.Contains(p.body, c) {
			t.Fatalf("the page lacks %q:\n%s", c, p.body)
		}
	}
	return p
}
