package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/listquery"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

// openAPIFile is the API's contract (issue 16).
const openAPIFile = "../docs/openapi.yaml"

// methods are the methods the service's Allow header can list, in its
// order (service/http.go).
var methods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// loadOpenAPI loads and validates docs/openapi.yaml, an OpenAPI 3.1
// document, its servers replaced by base, where the test's service answers.
func loadOpenAPI(t *testing.T, base string) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("loading %s: %v", openAPIFile, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("%s is OpenAPI %s, want 3.1", openAPIFile, doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", openAPIFile, err)
	}
	doc.Servers = openapi3.Servers{{URL: base}}
	return doc
}

// documentedRoutes lists the document's operations as "METHOD /path".
func documentedRoutes(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			out = append(out, m+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// routePattern is a ServeMux pattern with a method: "GET /healthz".
var routePattern = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|CONNECT|TRACE) (/\S*)$`)

// serverRoutes lists what the service serves, as "METHOD /path": the
// tenant routes svc.Routes() lists, and every method pattern written as a
// string in the package's source (the health, readiness and metrics routes
// are registered on the mux directly), so that a route added either way is
// seen here.
func serverRoutes(t *testing.T, svc *service.Service) []string {
	t.Helper()
	set := map[string]bool{}
	add := func(p string) {
		m := routePattern.FindStringSubmatch(p)
		if m == nil {
			t.Errorf("route %q is not METHOD /path", p)
			return
		}
		// ServeMux's {name...} and {$} have no OpenAPI form; none is used yet.
		path := strings.ReplaceAll(strings.ReplaceAll(m[2], "...}", "}"), "{$}", "")
		set[m[1]+" "+path] = true
	}
	for _, p := range svc.Routes() {
		add(p)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && routePattern.MatchString(s) {
					add(s)
				}
			}
			return true
		})
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// checkListParameters fails unless the job list's documented query
// parameters are exactly those the service reads: listquery's grammar and
// the list's own totals (service/api.go). The document cannot refuse
// an unknown query parameter, as the service does, so without this check
// a parameter added to the grammar would go undescribed unnoticed.
func checkListParameters(t *testing.T, doc *openapi3.T) {
	t.Helper()
	want := append(slices.Clone(listquery.Keys), "totals")
	var got []string
	for _, p := range doc.Paths.Value("/v1/tenants/{tenant}/jobs").Get.Parameters {
		if p.Value.In == openapi3.ParameterInQuery {
			got = append(got, p.Value.Name)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("GET /v1/tenants/{tenant}/jobs: %s documents the query parameters %v; the service reads %v", openAPIFile, got, want)
	}
}

// exchange is one API call of the scenario: the request, the status the
// service must answer it with, and whether the request breaks the
// document (which the document must then say, so that what the service
// refuses and what the document forbids agree).
type exchange struct {
	method, path string
	token        string // the bearer token; none when ""
	body         any    // nil: no body; a string or []byte is sent as is; anything else as JSON
	contentType  string // with a body: application/json unless set
	header       http.Header
	want         int
	docRejects   bool
}

// answer is what the service answered.
type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (a answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

func (a answer) errCode() string {
	if e, ok := a.body["error"].(map[string]any); ok {
		c, _ := e["code"].(string)
		return c
	}
	return ""
}

// contract sends the scenario's calls to a service and checks each
// request and each answer against the document.
type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	base   string
	opts   *openapi3filter.Options
	seen   map[string]map[int]bool // "METHOD /path" of the document: statuses answered
}

func newContract(t *testing.T, base string) *contract {
	t.Helper()
	doc := loadOpenAPI(t, base)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true, // an answer with a status the document does not list fails
		SkipSettingDefaults:   true,
		MultiError:            true,
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			if in.SecuritySchemeName != "bearerAuth" {
				return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
			}
			h := in.RequestValidationInput.Request.Header.Get("Authorization")
			if tok, ok := strings.CutPrefix(h, "Bearer "); !ok || strings.TrimSpace(tok) == "" {
				return errors.New("no bearer token")
			}
			return nil
		},
	}
	return &contract{t: t, doc: doc, router: router, base: base, opts: opts, seen: map[string]map[int]bool{}}
}

func (x exchange) request(base string) (*http.Request, error) {
	var body []byte
	switch b := x.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		body = j
	}
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(x.method, base+x.path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range x.header {
		req.Header[k] = slices.Clone(vs)
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	if body != nil {
		ct := x.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	return req, nil
}

// do sends x to the service; the request is checked against the document
// first, and the answer after, whatever its status.
func (c *contract) do(x exchange) answer {
	t := c.t
	t.Helper()
	name := x.method + " " + x.path
	vreq, err := x.request(c.base)
	if err != nil {
		t.Fatal(err)
	}
	route, params, routeErr := c.router.FindRoute(vreq)
	var in *openapi3filter.RequestValidationInput
	switch {
	case routeErr == nil:
		in = &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: c.opts}
		reqErr := openapi3filter.ValidateRequest(context.Background(), in)
		switch {
		case x.docRejects && reqErr == nil:
			t.Errorf("%s: the service refuses this request (%d), but the document allows it", name, x.want)
		case !x.docRejects && reqErr != nil:
			t.Errorf("%s: the document refuses this request: %v", name, reqErr)
		}
	case errors.Is(routeErr, routers.ErrMethodNotAllowed) || errors.Is(routeErr, routers.ErrPathNotFound):
		// Answered by the rules for unknown methods and routes below.
	default:
		t.Fatalf("%s: finding the route: %v", name, routeErr)
	}

	sreq, err := x.request(c.base)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(sreq)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Errorf("%s: the answer is not a JSON object: %v\n%s", name, err, raw)
		}
	}
	if a.status != x.want {
		t.Errorf("%s: status %d, want %d: %.500s", name, a.status, x.want, raw)
	}

	if routeErr != nil {
		in = c.unrouted(x, vreq, routeErr, a)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: a.status, Header: a.header, Options: c.opts}
	out.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: the answer %d does not match the document: %v\n%.500s", name, a.status, err, raw)
	}
	if routeErr == nil {
		key := route.Method + " " + route.Path
		if c.seen[key] == nil {
			c.seen[key] = map[int]bool{}
		}
		c.seen[key][a.status] = true
	}
	return a
}

// unrouted checks a request the document has no operation for: a path
// under /v1/ nothing serves must get the document's NotFound answer; a
// path served with other methods, its MethodNotAllowed answer, with an
// Allow header listing exactly the methods the document gives the paths
// that match it. It returns a validation input whose operation answers
// with that response only.
func (c *contract) unrouted(x exchange, req *http.Request, routeErr error, a answer) *openapi3filter.RequestValidationInput {
	t := c.t
	t.Helper()
	name := x.method + " " + x.path
	want, resp := http.StatusNotFound, "NotFound"
	if allow := c.documentedMethods(req.URL.Path); len(allow) > 0 {
		want, resp = http.StatusMethodNotAllowed, "MethodNotAllowed"
		if got := a.header.Get("Allow"); got != strings.Join(allow, ", ") {
			t.Errorf("%s: Allow %q, but the document serves the path with %s", name, got, strings.Join(allow, ", "))
		}
	} else if !errors.Is(routeErr, routers.ErrPathNotFound) {
		t.Errorf("%s: the router says %v, yet no documented path matches", name, routeErr)
	}
	if a.status != want {
		t.Errorf("%s: status %d; the document has no such operation, so want %d", name, a.status, want)
	}
	ref := c.doc.Components.Responses[resp]
	if ref == nil {
		t.Fatalf("the document has no components.responses.%s", resp)
	}
	op := &openapi3.Operation{Responses: openapi3.NewResponses(openapi3.WithStatus(want, ref))}
	return &openapi3filter.RequestValidationInput{Request: req, Options: c.opts,
		Route: &routers.Route{Spec: c.doc, Path: req.URL.Path, Method: x.method, Operation: op}}
}

// documentedMethods lists, in the service's order, the methods of every
// documented path that matches the concrete path p (/v1/tenants/acme/jobs
// matches /v1/tenants/{tenant}/jobs).
func (c *contract) documentedMethods(p string) []string {
	var out []string
	for _, m := range methods {
		for path, item := range c.doc.Paths.Map() {
			re := "^" + regexp.MustCompile(`\\\{[^}]*\\\}`).ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$"
			if item.GetOperation(m) != nil && regexp.MustCompile(re).MatchString(p) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// checkCoverage fails unless every operation of the document was called
// and every success status it documents was answered.
func (c *contract) checkCoverage() {
	t := c.t
	t.Helper()
	for path, item := range c.doc.Paths.Map() {
		for m, op := range item.Operations() {
			key := m + " " + path
			if len(c.seen[key]) == 0 {
				t.Errorf("%s (%s) was never called: the scenario must call every documented operation", key, op.OperationID)
				continue
			}
			var missed, unseen []string
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				switch {
				case err != nil:
					t.Errorf("%s: response %q: want a status code, not a range or default", key, code)
				case n >= 200 && n < 300 && !c.seen[key][n]:
					missed = append(missed, code)
				case !c.seen[key][n]:
					unseen = append(unseen, code)
				}
			}
			if len(missed) > 0 {
				sort.Strings(missed)
				t.Errorf("%s: documented success statuses never answered: %s", key, strings.Join(missed, ", "))
			}
			sort.Strings(unseen)
			t.Logf("%s: answered %v; documented errors not provoked: %v", key, statuses(c.seen[key]), unseen)
		}
	}
}

func statuses(m map[int]bool) []int {
	var out []int
	for s := range m {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// TestOpenAPI: docs/openapi.yaml, an OpenAPI 3.1 document, describes the
// whole API, and cannot drift from it (issue 16). On each backend a real
// service runs a scenario that calls every documented operation, with
// successes and the main refusals; every request is checked against the
// document (one the service refuses for a reason the document can state
// must break the document, every other one must pass), every answer too,
// whatever its status, and so are the answers to unknown routes and
// methods. Then: every documented operation was called and gave each of
// its documented success statuses, and the service's route table and the
// document's operations are the same.
func TestOpenAPI(t *testing.T) {
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
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(c *config.Config) {
			c.Ordo.Audit.SigningKeyFile = keyFile // checkpoints are made by the test, below
			c.Ordo.Http.MetricsAuth = config.MetricsAuthToken
			c.Ordo.Http.MaxBodyBytes = 4096
			c.Ordo.Http.AuthFailuresPerMinute = 3
		}, service.Options{})
		c := newContract(t, e.URL)

		checkListParameters(t, c.doc)
		doc, srv := documentedRoutes(c.doc), serverRoutes(t, e.Svc)
		for _, r := range srv {
			if !slices.Contains(doc, r) {
				t.Errorf("the service serves %s, which %s does not describe", r, openAPIFile)
			}
		}
		for _, r := range doc {
			if !slices.Contains(srv, r) {
				t.Errorf("%s describes %s, which the service does not serve", openAPIFile, r)
			}
		}

		openAPIScenario(t, c, e, signer)
		c.checkCoverage()
	})
}

func openAPIScenario(t *testing.T, c *contract, e *env, signer *audit.PrivateKey) {
	const (
		acme   = "/v1/tenants/acme"
		globex = "/v1/tenants/globex"
	)
	tok := acmeToken
	unknownJob := uuid.NewString()

	// Operations.
	c.do(exchange{method: "GET", path: "/healthz", want: 200})
	c.do(exchange{method: "GET", path: "/readyz", want: 200})
	c.do(exchange{method: "GET", path: "/metrics", token: adminToken, want: 200})
	c.do(exchange{method: "GET", path: "/metrics", token: tok, want: 403})
	c.do(exchange{method: "GET", path: "/metrics", want: 401})

	// Enqueue.
	emailJob := map[string]any{"kind": "email.send", "partition": "eu", "payload": map[string]any{"to": "ada@example.com"},
		"priority": 1, "run_at": "", "idempotency_key": "welcome-42", "max_attempts": 5}
	first := c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: emailJob, want: 201})
	email := first.str("job_id")
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: emailJob, want: 200})
	resize1 := c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"resize","payload":{"img":1}}`,
		header: http.Header{"Idempotency-Key": {"order-7"}}, want: 201}).str("job_id")
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"resize","idempotency_key":"order-8"}`,
		header: http.Header{"Idempotency-Key": {"order-7"}}, want: 400})
	if r := c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"resize","payload":{"img":2}}`,
		header: http.Header{"Idempotency-Key": {"order-7"}}, want: 409}); r.errCode() != "idempotency_conflict" {
		t.Errorf("the key of another payload: %s", r.raw)
	}
	if r := c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok,
		body: `{"jobs":[{"kind":"resize","idempotency_key":"order-7","payload":{"img":3}}]}`, want: 409}); r.errCode() != "idempotency_conflict" {
		t.Errorf("a batch with the key of another payload: %s", r.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `[1,2]`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: "", want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","colour":"red"}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":7}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"payload":{}}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"bad kind!"}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","priority":99999}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","run_at":"tomorrow"}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","partition":"` + strings.Repeat("p", 300) + `"}`, want: 400, docRejects: true})
	// Refusals the document states in words only.
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"a","kind":"b"}`, want: 400})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","run_at":"9999-12-31T23:59:59-23:59"}`, want: 400})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"k","payload":{"x":"` + strings.Repeat("a", 2000) + `"}}`, want: 413})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: "kind=k", contentType: "application/x-www-form-urlencoded", want: 415, docRejects: true})
	// Tokens and tenants.
	c.do(exchange{method: "POST", path: acme + "/jobs", body: `{"kind":"k"}`, want: 401, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: "not-a-token", body: `{"kind":"k"}`, want: 401})
	c.do(exchange{method: "POST", path: globex + "/jobs", token: tok, body: `{"kind":"k"}`, want: 403})
	c.do(exchange{method: "POST", path: "/v1/tenants/no%20spaces/jobs", token: tok, body: `{"kind":"k"}`, want: 400, docRejects: true})

	// Batch.
	batch := map[string]any{"jobs": []map[string]any{
		{"kind": "resize", "payload": map[string]any{"img": 2}, "max_attempts": 2},
		{"kind": "report.build", "run_at": "2030-01-01T00:00:00Z"},
		{"kind": "other.kind", "payload": []any{1, "two"}},
	}}
	b := c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok, body: batch, want: 201})
	var batchIDs []string
	for _, j := range b.body["jobs"].([]any) {
		batchIDs = append(batchIDs, j.(map[string]any)["job_id"].(string))
	}
	if len(batchIDs) != 3 {
		t.Fatalf("batch: %s", b.raw)
	}
	resize2, report, other := batchIDs[0], batchIDs[1], batchIDs[2]
	c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok, body: batch, want: 200})
	c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok, body: `{"jobs":[]}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok, body: `{"jobs":[{"kind":"a"},{"kind":"bad kind"}]}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/batch", token: tok, body: `{"jobs":[{"kind":"a"}]}`,
		header: http.Header{"Idempotency-Key": {"order-9"}}, want: 400})

	// List and show.
	page := c.do(exchange{method: "GET", path: acme + "/jobs?limit=2", token: tok, want: 200})
	if page.str("next_cursor") == "" {
		t.Fatalf("a first page of 2 of 5 jobs has no next_cursor: %s", page.raw)
	}
	c.do(exchange{method: "GET", path: acme + "/jobs?limit=2&cursor=" + page.str("next_cursor"), token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs?state=pending,scheduled&state=running&kind=resize&payload=true", token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs?status=pending&partition=", token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs?partition=eu", token: adminToken, want: 200})
	newest := c.do(exchange{method: "GET", path: acme + "/jobs?order=newest&limit=2", token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs?order=newest&limit=2&cursor=" + newest.str("next_cursor"), token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs?order=sideways", token: tok, want: 400, docRejects: true})
	if r := c.do(exchange{method: "GET", path: acme + "/jobs?limit=1&totals=true", token: tok, want: 200}); r.body["totals"] == nil {
		t.Errorf("totals=true: %s", r.raw)
	}
	c.do(exchange{method: "GET", path: acme + "/jobs?totals=maybe", token: tok, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: acme + "/jobs?state=sleeping", token: tok, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: acme + "/jobs?limit=0", token: tok, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: acme + "/jobs?kind=bad%20kind", token: tok, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: acme + "/jobs?cursor=garbage", token: tok, want: 400})
	c.do(exchange{method: "GET", path: acme + "/jobs?sort=desc", token: tok, want: 400})
	c.do(exchange{method: "GET", path: acme + "/jobs?state=pending&status=pending", token: tok, want: 400})
	c.do(exchange{method: "GET", path: acme + "/jobs/" + email, token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs/" + unknownJob, token: tok, want: 404})
	c.do(exchange{method: "GET", path: acme + "/jobs/not-a-uuid", token: tok, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: globex + "/jobs/" + email, token: e.GlobexToken, want: 404}) // acme's job
	c.do(exchange{method: "GET", path: globex + "/jobs/" + email, token: tok, want: 403})
	c.do(exchange{method: "GET", path: acme + "/stats", token: tok, want: 200})

	// Workers: dequeue, extend, complete, fail.
	d := c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok,
		body: map[string]any{"limit": 2, "kinds": []string{"resize"}, "lease_seconds": 60, "owner": "py-worker-1", "strict_partitions": false,
			"wait_seconds": 5}, want: 200}) // two jobs are ready: no wait
	leases := d.body["jobs"].([]any)
	if len(leases) != 2 {
		t.Fatalf("dequeue: %s", d.raw)
	}
	tokens := map[string]string{}
	for _, l := range leases {
		lm := l.(map[string]any)
		tokens[lm["job_id"].(string)] = lm["lease_token"].(string)
	}
	if tokens[resize1] == "" || tokens[resize2] == "" {
		t.Fatalf("dequeue leased %v, want %s and %s", tokens, resize1, resize2)
	}
	c.do(exchange{method: "GET", path: acme + "/jobs/" + resize1, token: tok, want: 200}) // running: lease_owner, lease_expires_at
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize1 + "/extend", token: tok,
		body: map[string]any{"lease_token": tokens[resize1], "lease_seconds": 120}, want: 200})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize1 + "/extend", token: tok,
		body: map[string]any{"lease_token": tokens[resize1], "lease_seconds": 0.5}, want: 400, docRejects: true})
	done := map[string]any{"lease_token": tokens[resize1]}
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize1 + "/complete", token: tok, body: done, want: 200})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize1 + "/complete", token: tok, body: done, want: 200}) // a retry: the first answer
	if r := c.do(exchange{method: "POST", path: acme + "/jobs/" + resize1 + "/complete", token: tok,
		body: map[string]any{"lease_token": uuid.NewString()}, want: 409}); r.errCode() != "job_finished" {
		t.Errorf("complete of a finished job with another token: %s", r.raw)
	}
	if r := c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/complete", token: tok, body: done, want: 409}); r.errCode() != "lease_lost" {
		t.Errorf("complete with another job's lease token: %s", r.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/complete", token: tok, body: `{}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/complete", token: tok, body: `{"lease_token":"x"}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + unknownJob + "/complete", token: tok, body: done, want: 404})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/fail", token: tok,
		body: map[string]any{"lease_token": tokens[resize2], "retry_after_seconds": -1}, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/fail", token: tok,
		body: map[string]any{"lease_token": tokens[resize2], "error": "disk full", "retry": true, "retry_after_seconds": 10}, want: 200})
	e.Wall.Advance(11 * time.Second)
	d = c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: map[string]any{"kinds": []string{"resize"}}, want: 200})
	if n := len(d.body["jobs"].([]any)); n != 1 {
		t.Fatalf("dequeue of the retry: %s", d.raw)
	}
	retry := d.body["jobs"].([]any)[0].(map[string]any)["lease_token"]
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/fail", token: tok,
		body: map[string]any{"lease_token": retry, "error": "still full", "retry": false}, want: 200})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/extend", token: tok, body: map[string]any{"lease_token": retry}, want: 409})
	failed := c.do(exchange{method: "GET", path: acme + "/jobs/" + resize2, token: tok, want: 200}) // failed: last_error, attempt_errors
	if hist, _ := failed.body["attempt_errors"].([]any); len(hist) != 2 ||
		hist[0].(map[string]any)["error"] != "disk full" || hist[1].(map[string]any)["error"] != "still full" ||
		hist[1].(map[string]any)["attempt"] != float64(2) {
		t.Errorf("attempt history of a job failed twice: %s", failed.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, want: 200}) // no body: leases the email job
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: `{"limit":100000}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: `{"lease_seconds":0.5}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: `{"wait_seconds":31}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: `{"kinds":["ok","bad kind"]}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/dequeue", token: tok, body: `{"owner":"w\u0000"}`, want: 400, docRejects: true})

	// Cancel.
	c.do(exchange{method: "POST", path: acme + "/jobs/" + other + "/cancel", token: tok, body: map[string]any{"reason": "not needed"}, want: 200})
	if r := c.do(exchange{method: "POST", path: acme + "/jobs/" + other + "/cancel", token: tok, want: 409}); r.errCode() != "job_finished" {
		t.Errorf("second cancel: %s", r.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/jobs/" + report + "/cancel", token: tok, body: `{"why":"x"}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + report + "/cancel", token: tok,
		body: map[string]any{"reason": strings.Repeat("r", 5000)}, want: 413}) // over Ordo:Http:MaxBodyBytes
	c.do(exchange{method: "POST", path: acme + "/jobs/" + unknownJob + "/cancel", token: tok, want: 404})

	// Audit: verify, checkpoints, proofs, snapshots.
	c.do(exchange{method: "POST", path: acme + "/verify", token: tok, want: 200})
	c.do(exchange{method: "POST", path: acme + "/verify", token: tok, body: map[string]any{"partition": "eu"}, want: 200})
	c.do(exchange{method: "POST", path: acme + "/verify", token: tok, body: map[string]any{"partition": strings.Repeat("p", 300)}, want: 400, docRejects: true})
	c.do(exchange{method: "GET", path: acme + "/checkpoints", token: tok, want: 200}) // none yet
	c.do(exchange{method: "GET", path: acme + "/jobs/" + email + "/proof", token: tok, want: 409})
	// Both chains get a full tile (256 entries) for the tlog routes below;
	// through the queue, as a batch that large exceeds the body limit here.
	for _, p := range []string{"", "eu"} {
		var fill []queue.Job
		for i := range 256 {
			fill = append(fill, queue.Job{TenantID: "acme", PartitionKey: p, Kind: "tile.fill", Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
		}
		if _, err := e.Svc.Queue().EnqueueMany(context.Background(), fill); err != nil {
			t.Fatal(err)
		}
	}
	c.do(exchange{method: "GET", path: acme + "/tlog/checkpoint", token: tok, want: 404}) // not signed yet
	cp := &audit.Checkpointer{Store: e.Svc.Queue().Backend().AuditStore(), Key: signer, Holder: "test-node",
		Now: func() time.Time { return time.UnixMilli(e.Wall.UnixMilli()) }}
	if res, err := cp.RunOnce(context.Background()); err != nil || len(res.Checkpoints) != 2 {
		t.Fatalf("checkpointing: %+v, %v; want the eu and the default chain", res, err)
	}
	if cps := c.do(exchange{method: "GET", path: acme + "/checkpoints", token: tok, want: 200}); len(cps.body["checkpoints"].([]any)) != 2 {
		t.Errorf("checkpoints: %s", cps.raw)
	}
	c.do(exchange{method: "GET", path: acme + "/jobs/" + email + "/proof", token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs/" + report + "/proof", token: tok, want: 200})
	c.do(exchange{method: "GET", path: acme + "/jobs/" + unknownJob + "/proof", token: tok, want: 404})
	c.do(exchange{method: "POST", path: acme + "/verify", token: tok, want: 200}) // checkpoint signatures checked too
	c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, body: map[string]any{"partition": "eu"}, want: 201})
	c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, want: 201}) // the default chain
	c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, body: map[string]any{"from_chain_pos": 1, "to_chain_pos": 2}, want: 201})
	if r := c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, body: map[string]any{"partition": "nowhere"}, want: 409}); r.errCode() != "snapshot_refused" {
		t.Errorf("snapshot of an empty chain: %s", r.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, body: map[string]any{"from_chain_pos": 3, "to_chain_pos": 1}, want: 400})
	c.do(exchange{method: "POST", path: acme + "/snapshots", token: tok, body: map[string]any{"from_chain_pos": -1}, want: 400, docRejects: true})
	if sn := c.do(exchange{method: "GET", path: acme + "/snapshots", token: tok, want: 200}); len(sn.body["snapshots"].([]any)) != 3 {
		t.Errorf("snapshots: %s", sn.raw)
	}
	c.do(exchange{method: "GET", path: acme + "/snapshots?limit=1", token: tok, want: 200})

	// The chains as tlog-tiles logs (tlog_test.go tests them with a tlog
	// client, partial tiles too: a multi-segment {index} has no route in
	// the document's router, so only single-segment ones are called here).
	for _, prefix := range []string{acme + "/tlog", acme + "/partitions/eu/tlog"} {
		c.do(exchange{method: "GET", path: prefix + "/checkpoint", token: tok, want: 200})
		c.do(exchange{method: "GET", path: prefix + "/tile/0/000", token: tok, want: 200})
		c.do(exchange{method: "GET", path: prefix + "/tile/entries/000", token: adminToken, want: 200})
		c.do(exchange{method: "GET", path: prefix + "/tile/1/000", token: tok, want: 404})       // the tree has a partial one only
		c.do(exchange{method: "GET", path: prefix + "/tile/entries/999", token: tok, want: 404}) // beyond the tree
		c.do(exchange{method: "GET", path: prefix + "/tile/64/000", token: tok, want: 400, docRejects: true})
		c.do(exchange{method: "GET", path: prefix + "/tile/0/1000", token: tok, want: 400, docRejects: true})
		c.do(exchange{method: "GET", path: prefix + "/tile/entries/07", token: tok, want: 400, docRejects: true})
		c.do(exchange{method: "GET", path: prefix + "/checkpoint", want: 401}) // the document allows no token: public tenants
		c.do(exchange{method: "POST", path: prefix + "/checkpoint", token: tok, want: 405})
	}
	c.do(exchange{method: "GET", path: acme + "/partitions/nowhere/tlog/checkpoint", token: tok, want: 404})
	c.do(exchange{method: "GET", path: acme + "/partitions/bad%01key/tlog/checkpoint", token: tok, want: 400})
	c.do(exchange{method: "GET", path: globex + "/tlog/tile/0/000", token: tok, want: 403})
	c.do(exchange{method: "GET", path: acme + "/snapshots?limit=0", token: tok, want: 400, docRejects: true})

	// A chain whose history was changed: the verdict lists the issues.
	if _, err := e.Raw.Exec(`UPDATE `+e.Prefix+`scheduler_log SET payload = '{"to":"eve@example.com"}' WHERE CAST(job_id AS TEXT) = `+e.Ph(1), email); err != nil {
		t.Fatal(err)
	}
	if v := c.do(exchange{method: "POST", path: acme + "/verify", token: tok, body: map[string]any{"partition": "eu"}, want: 200}); v.body["valid"] != false {
		t.Errorf("verify of a changed chain: %s", v.raw)
	}

	// Retry and delete.
	c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/retry", token: tok, want: 200})           // failed
	c.do(exchange{method: "POST", path: acme + "/jobs/" + other + "/retry", token: tok, body: `{}`, want: 200}) // cancelled
	if r := c.do(exchange{method: "POST", path: acme + "/jobs/" + resize2 + "/retry", token: tok, want: 409}); r.errCode() != "not_retryable" {
		t.Errorf("retry of a pending job: %s", r.raw)
	}
	c.do(exchange{method: "POST", path: acme + "/jobs/" + report + "/retry", token: tok, body: `{"now":true}`, want: 400, docRejects: true})
	c.do(exchange{method: "POST", path: acme + "/jobs/" + unknownJob + "/retry", token: tok, want: 404})
	if r := c.do(exchange{method: "DELETE", path: acme + "/jobs/" + resize1, token: tok, want: 200}); r.str("status") != "pruned" {
		t.Errorf("delete of a succeeded job: %s", r.raw)
	}
	c.do(exchange{method: "DELETE", path: acme + "/jobs/" + resize1, token: tok, want: 200}) // again: the same
	if r := c.do(exchange{method: "GET", path: acme + "/jobs/" + resize1, token: tok, want: 200}); r.str("status") != "pruned" {
		t.Errorf("a deleted job: %s", r.raw)
	}
	if r := c.do(exchange{method: "DELETE", path: acme + "/jobs/" + report, token: tok, want: 409}); r.errCode() != "job_not_finished" {
		t.Errorf("delete of a scheduled job: %s", r.raw)
	}
	c.do(exchange{method: "DELETE", path: acme + "/jobs/" + unknownJob, token: tok, want: 404})
	c.do(exchange{method: "DELETE", path: globex + "/jobs/" + resize2, token: e.GlobexToken, want: 404}) // acme's job

	// Unknown methods and routes.
	c.do(exchange{method: "DELETE", path: acme + "/jobs", token: tok, want: 405})
	c.do(exchange{method: "PUT", path: acme + "/jobs/batch", token: tok, want: 405}) // Allow: GET and DELETE (as a job id), POST
	c.do(exchange{method: "PUT", path: acme + "/dequeue", token: tok, want: 405})
	c.do(exchange{method: "GET", path: acme + "/verify", token: tok, want: 405})
	c.do(exchange{method: "DELETE", path: acme + "/snapshots", token: tok, want: 405})
	c.do(exchange{method: "PATCH", path: acme + "/jobs/" + email, token: tok, want: 405})
	c.do(exchange{method: "GET", path: acme + "/no-such-route", token: tok, want: 404})
	c.do(exchange{method: "GET", path: "/v1/nothing", token: tok, want: 404})

	// Too many failed authentications from this address: 429 for any
	// token, with Retry-After, until the minute ends.
	e.Wall.Advance(time.Minute) // a window of its own
	for range 3 {
		c.do(exchange{method: "GET", path: acme + "/stats", token: "not-a-token", want: 401})
	}
	if r := c.do(exchange{method: "GET", path: acme + "/stats", token: tok, want: 429}); r.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", r.header)
	}
	e.Wall.Advance(time.Minute)

	// The database gone: 503, worth retrying; the process still answers.
	if err := e.Svc.Queue().Backend().Close(); err != nil {
		t.Fatal(err)
	}
	c.do(exchange{method: "GET", path: "/healthz", want: 200})
	c.do(exchange{method: "GET", path: "/readyz", want: 503})
	c.do(exchange{method: "GET", path: acme + "/jobs/" + email, token: tok, want: 503})
	c.do(exchange{method: "POST", path: acme + "/jobs", token: tok, body: `{"kind":"late"}`, want: 503})
}
