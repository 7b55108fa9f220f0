package dashboard_test

import (
	"context"
	"crypto/rand"
	"database/sql"
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
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
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

// env is a started service (its dashboard at url), a raw connection for
// tampering, the manual wall clock, and the signing key.
type env struct {
	t      *testing.T
	svc    *service.Service
	url    string
	raw    *sql.DB
	prefix string // "scheduler." on PostgreSQL
	wall   *hlc.ManualClock
	key    *audit.PrivateKey
	// globexToken is created in the database (revocable).
	globexToken, globexTokenID string
}

func newEnv(t *testing.T, dbURL string) *env {
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
	wall := servicetest.Wall()
	svc, err := service.New(context.Background(), cfg, service.Options{Wall: wall, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		_ = svc.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	e := &env{t: t, svc: svc, url: svc.URL(), wall: wall, key: key}
	e.raw, e.prefix = servicetest.OpenRaw(t, dbURL)
	e.globexToken, e.globexTokenID = servicetest.CreateGlobexToken(t, svc)
	return e
}

func (e *env) ph(n int) string { return servicetest.Placeholder(e.prefix, n) }

// exec runs SQL on the raw connection; {p} is the table prefix.
func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.raw.Exec(strings.ReplaceAll(q, "{p}", e.prefix), args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// api calls the JSON API with a bearer token.
func (e *env) api(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// enqueue enqueues one job through the API and returns its id; the wall
// clock moves on a millisecond so every job has its own time.
func (e *env) enqueue(tenant, token string, job map[string]any) string {
	e.t.Helper()
	status, out := e.api("POST", "/v1/tenants/"+tenant+"/jobs", token, job)
	if status != http.StatusCreated {
		e.t.Fatalf("enqueue: %d %v", status, out)
	}
	e.wall.Advance(time.Millisecond)
	return out["job_id"].(string)
}

// checkpoint signs a checkpoint of every chain that grew.
func (e *env) checkpoint() {
	e.t.Helper()
	as := e.svc.Queue().Backend().(interface{ AuditStore() driver.AuditStore }).AuditStore()
	cp := &audit.Checkpointer{Store: as, Key: e.key, Now: func() time.Time { return time.UnixMilli(e.wall.UnixMilli()) }}
	if _, err := cp.RunOnce(context.Background()); err != nil {
		e.t.Fatal(err)
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
	b.e.t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, rd)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.e.url)
	}
	if b.cookie != "" {
		req.Header.Set("Cookie", b.cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
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

func (b *browser) get(path string) page { b.e.t.Helper(); return b.do("GET", path, nil) }

func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	return b.do("POST", path, form)
}

// login logs in with token and fails the test unless it worked.
func (e *env) login(token string) *browser {
	e.t.Helper()
	b := &browser{e: e}
	p := b.post("/login", url.Values{"token": {token}})
	if p.status != http.StatusSeeOther || b.cookie == "" {
		e.t.Fatalf("login: %d, cookie %q: %s", p.status, b.cookie, p.body)
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
