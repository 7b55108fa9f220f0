package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/authguard"
	"github.com/ordo-sched/ordo/internal/errstatus"
	"github.com/ordo-sched/ordo/internal/strictjson"
)

// apiError is an error response: {"error": {"code", "field", "message"}}.
type apiError struct {
	Status int    `json:"-"`
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
	Msg    string `json:"message"`
}

func (e *apiError) Error() string { return e.Msg }

// fieldError is a 400 naming the field at fault.
type fieldError struct {
	Field string
	Msg   string
}

func badField(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (f *fieldError) api(prefix string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_field", Field: prefix + f.Field, Msg: f.Msg}
}

// statusError is the answer to err, with the status and code errstatus
// gives it, saying msg.
func statusError(err error, msg string) *apiError {
	st := errstatus.Of(err)
	return &apiError{Status: st.HTTP, Code: st.Code, Msg: msg}
}

var errJobNotFound = statusError(driver.ErrJobNotFound, "job not found")

// writeJSON encodes v before writing the status, so a value that cannot
// be encoded is a 500 (and a log line) instead of a 200 with an empty or
// cut body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		slog.Error("encoding a response", "error", err)
		buf.Reset()
		status = http.StatusInternalServerError
		_ = json.NewEncoder(&buf).Encode(map[string]*apiError{"error": {Code: "internal", Msg: "the response could not be encoded; the service log has the details"}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ordo"`)
	}
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// fail answers err with the status errstatus gives it, the one the
// dashboard gives it too: a caller's mistake with msg (the error's own
// words when msg is empty); the service's own failure (5xx) is logged and
// answered without details unless msg says what the caller may know.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error, msg string) {
	st := errstatus.Of(err)
	switch {
	case st.Internal():
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", st.HTTP, "error", err)
		if msg == "" {
			msg = "the request failed; the service log has the details"
		}
	case msg == "":
		msg = err.Error()
	}
	writeError(w, statusError(err, msg))
}

// internal answers an error no handler expected: 500, or 503 for a closed
// database or a cancelled request (errstatus), without details.
func (s *Service) internal(w http.ResponseWriter, r *http.Request, err error) { s.fail(w, r, err, "") }

// readJSON decodes the request body into dst: at most limit bytes, no
// unknown fields, one value. An empty body decodes as {} when
// emptyOK.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any, emptyOK bool, limits ...strictjson.Limit) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Msg: "send the body as application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Msg: fmt.Sprintf("request body larger than %d bytes (Ordo:Http:MaxBodyBytes)", limit)}
		}
		return &apiError{Status: http.StatusBadRequest, Code: "bad_request", Msg: "reading the request body: " + err.Error()}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Msg: "empty body: send a JSON object"}
	}
	return decodeJSON(body, dst, limits...)
}

// decodeJSON decodes one JSON value into dst with strictjson's checks: no
// invalid UTF-8 or unpaired surrogates, no duplicate member names, member
// names matched exactly.
func decodeJSON(body []byte, dst any, limits ...strictjson.Limit) *apiError {
	if err := strictjson.Decode(body, dst, limits...); err != nil {
		return jsonError(err)
	}
	return nil
}

// checkText refuses a free-text field longer than max bytes or holding
// U+0000, which PostgreSQL's text cannot store and SQLite's can: both
// backends answer the same 400. (Invalid UTF-8 never gets this far:
// decodeJSON refuses it.)
func checkText(field, v string, max int) *apiError {
	if len(v) > max {
		return badField(field, "%s is %d bytes, at most %d allowed", field, len(v), max)
	}
	if strings.ContainsRune(v, 0) {
		return badField(field, "%s contains the character U+0000, which ordo does not store", field)
	}
	return nil
}

func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var strict *strictjson.Error
	switch {
	case errors.As(err, &strict) && strict.Kind == strictjson.UnknownField:
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: strict.Path, Msg: strict.Msg}
	case errors.As(err, &strict) && strict.Kind == strictjson.TooMany:
		return &apiError{Status: http.StatusBadRequest, Code: "too_many", Field: strict.Path, Msg: strict.Msg}
	case errors.As(err, &strict):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Field: strict.Path, Msg: "invalid JSON: " + strict.Msg}
	case errors.As(err, &syn):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Msg: fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Msg: fmt.Sprintf("want a JSON object, got %s", typ.Value)}
		}
		return badField(field, "%s: want %s, got %s", field, jsonType(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Msg: "invalid JSON: unexpected end of input"}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: name, Msg: fmt.Sprintf("unknown field %q", name)}
	}
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_json", Msg: "invalid JSON: " + err.Error()}
}

func jsonType(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "string":
		return "a string"
	case goType == "bool", goType == "*bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	return "a " + goType
}

// tenantHandler serves a route under /v1/tenants/{tenant}/ for a caller
// the route already authenticated and authorised.
type tenantHandler func(w http.ResponseWriter, r *http.Request, tenant string, p principal)

// authenticated returns the principal of the request's bearer token, or
// answers 401 (no or a bad token) or 503/500 and returns false.
func (s *Service) authenticated(w http.ResponseWriter, r *http.Request) (principal, bool) {
	addr := authguard.ClientAddress(r)
	if left, blocked := s.guard.Blocked(addr); blocked {
		tooManyFailures(w, left)
		return principal{}, false
	}
	p, err := s.auth.authenticate(r.Context(), bearer(r))
	switch {
	case errors.Is(err, errBadToken):
		if s.guard.Fail(addr) {
			s.log.Warn("a request with a bearer token that is not valid", "address", addr, "method", r.Method, "path", r.URL.Path)
		}
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: err.Error()})
		return p, false
	case errors.Is(err, errNoToken):
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: err.Error()})
		return p, false
	case err != nil:
		s.internal(w, r, err)
		return p, false
	}
	return p, true
}

// tooManyFailures answers a client address that failed to authenticate
// too often (Ordo:Http:AuthFailuresPerMinute).
func tooManyFailures(w http.ResponseWriter, left time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(left.Round(time.Second).Seconds())+1))
	writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: "too_many_requests",
		Msg: "too many failed authentications from this address (Ordo:Http:AuthFailuresPerMinute); retry later"})
}

// tenantRoute authenticates the bearer token (401), checks the tenant in
// the path (400) and that the token may act for it (403), before h runs.
// A token of one tenant gets 403 on every route of another tenant,
// whether that tenant, or the job named, exists or not.
func (s *Service) tenantRoute(h tenantHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticated(w, r)
		if !ok {
			return
		}
		tenant := r.PathValue("tenant")
		if err := chain.ValidateTenantID(tenant); err != nil {
			writeError(w, badField("tenant", "%v", err))
			return
		}
		if !p.mayActFor(tenant) {
			writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden", Msg: fmt.Sprintf("this token may not act for tenant %q", tenant)})
			return
		}
		h(w, r, tenant, p)
	})
}

// metricsRoute guards /metrics by Ordo:Http:MetricsAuth: its series name
// tenants, so beyond loopback they are for an admin token (a Prometheus
// scrape's authorization) unless the operator says otherwise.
func (s *Service) metricsRoute(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := s.cfg.Load().Ordo.Http
		open := cfg.MetricsAuth == config.MetricsAuthNone || cfg.MetricsAuth == config.MetricsAuthAuto && loopbackListen(cfg.Listen)
		if !open {
			p, ok := s.authenticated(w, r)
			if !ok {
				return
			}
			if !p.admin {
				writeError(w, &apiError{Status: http.StatusForbidden, Code: "forbidden", Msg: "/metrics names every tenant: it needs an admin token (Ordo:Http:MetricsAuth)"})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// loopbackListen reports whether a listen address (host:port) accepts
// connections from this machine only.
func loopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// statusRecorder remembers the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routes builds the handler: the API under /v1/, /metrics, /healthz,
// /readyz (docs/api.md), and the web dashboard at every other path
// (docs/dashboard.md).
func (s *Service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metricsRoute(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})))
	s.tiles = audit.NewTiles(s.q.Backend().AuditStore(), tlogCacheTiles)
	tiles := map[string]bool{}
	for _, rt := range s.tlogRoutes() {
		tiles[rt.pattern] = true
	}
	for _, rt := range s.apiRoutes() {
		h := s.tenantRoute(rt.h)
		if tiles[rt.pattern] {
			h = s.publicTiles(rt.h, h) // Ordo:Audit:PublicTiles
		}
		mux.Handle(rt.pattern, h)
	}
	var dash http.Handler
	if d, err := s.newDashboard(); err != nil {
		// The API serves on; only the web pages are missing.
		s.log.Warn("the web dashboard is off", "error", err)
	} else {
		dash = d
	}
	// The methods the mux serves a path with, for 405's Allow header.
	allowed := func(r *http.Request) []string {
		var out []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				out = append(out, m)
			}
		}
		return out
	}
	mux.HandleFunc("/", s.notFoundOrDashboard(dash, allowed))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	})
}

type apiRoute struct {
	pattern string
	h       tenantHandler
}

// apiRoutes lists every tenant route (the authorisation tests walk it).
func (s *Service) apiRoutes() []apiRoute {
	return append([]apiRoute{
		{"POST /v1/tenants/{tenant}/jobs", s.enqueueOne},
		{"POST /v1/tenants/{tenant}/jobs/batch", s.enqueueBatch},
		{"GET /v1/tenants/{tenant}/jobs", s.listJobs},
		{"GET /v1/tenants/{tenant}/jobs/{id}", s.showJob},
		{"POST /v1/tenants/{tenant}/jobs/{id}/cancel", s.cancelJob},
		{"POST /v1/tenants/{tenant}/jobs/{id}/retry", s.retryJob},
		{"DELETE /v1/tenants/{tenant}/jobs/{id}", s.deleteJob},
		{"POST /v1/tenants/{tenant}/jobs/{id}/complete", s.completeJob},
		{"POST /v1/tenants/{tenant}/jobs/{id}/fail", s.failJob},
		{"POST /v1/tenants/{tenant}/jobs/{id}/extend", s.extendJob},
		{"POST /v1/tenants/{tenant}/dequeue", s.dequeue},
		{"GET /v1/tenants/{tenant}/stats", s.stats},
		{"POST /v1/tenants/{tenant}/verify", s.verify},
		{"GET /v1/tenants/{tenant}/jobs/{id}/proof", s.jobProof},
		{"GET /v1/tenants/{tenant}/checkpoints", s.checkpoints},
		{"GET /v1/tenants/{tenant}/snapshots", s.snapshots},
		{"POST /v1/tenants/{tenant}/snapshots", s.createSnapshot},
	}, s.tlogRoutes()...)
}

// Routes lists the patterns of the tenant routes, for documentation and
// tests.
func (s *Service) Routes() []string {
	var out []string
	for _, rt := range s.apiRoutes() {
		out = append(out, rt.pattern)
	}
	return out
}

func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: the database answers and no migration is pending.
func (s *Service) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	checks := map[string]string{"database": "ok", "migrations": "ok"}
	ready := true
	pending, err := s.pendingMigrations(ctx)
	switch {
	case err != nil:
		s.log.Warn("readiness check failed", "error", err)
		checks["database"], checks["migrations"] = "unreachable", "unknown"
		ready = false
	case pending:
		checks["migrations"] = "pending: run `ordo migrate`"
		ready = false
	}
	status, code := http.StatusOK, "ready"
	if !ready {
		status, code = http.StatusServiceUnavailable, "not ready"
	}
	writeJSON(w, status, map[string]any{"status": code, "checks": checks, "mode": s.q.Mode().String(), "node": s.cfg.Load().Ordo.NodeId})
}
