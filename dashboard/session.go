package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/authguard"
)

// sessionCookie names the session cookie. The __Host- prefix would pin it
// to Secure and the exact host, but browsers refuse such a cookie over
// plain HTTP even on loopback, where `ordo serve` listens by default.
const sessionCookie = "ordo_session"

// session is a logged-in browser: the SHA-256 of the token it logged in
// with (never the token), re-checked on every request, and the CSRF token
// its forms carry.
type session struct {
	tokenHash [32]byte
	csrf      string
}

// touchEvery is how stale a session's last use may be stored: a request
// writes it only when it is older, so that browsing is not a write per
// page, at the cost of this much slack in the idle limit.
const touchEvery = time.Minute

// sessionStore keeps sessions in the database (driver.Sessions), so that
// any node serves any session and a restart logs nobody out. The cookie
// holds a random 256-bit id; the database holds its SHA-256.
type sessionStore struct {
	db            driver.Sessions
	idle, maxLife time.Duration
	max, perToken int
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessionStore) limits(now time.Time) driver.SessionLimits {
	return driver.SessionLimits{MaxTotal: s.max, MaxPerToken: s.perToken, IdleBefore: now.Add(-s.idle), CreatedBefore: now.Add(-s.maxLife)}
}

// create starts a session for a token hash and returns its id; a token's
// oldest session ends when it would have more than perToken, and a full
// store refuses with driver.ErrTooManySessions.
func (s *sessionStore) create(ctx context.Context, h [32]byte, now time.Time) (string, error) {
	id := randomToken()
	now = now.Truncate(time.Millisecond)
	err := s.db.CreateSession(ctx, driver.Session{IDHash: sha256.Sum256([]byte(id)), TokenHash: h, CSRF: randomToken(),
		CreatedAt: now, LastSeen: now}, s.limits(now))
	return id, err
}

// get returns a live session and marks it used; ok is false for none or
// an expired one (which it deletes).
func (s *sessionStore) get(ctx context.Context, id string, now time.Time) (ss session, ok bool, err error) {
	h := sha256.Sum256([]byte(id))
	ds, err := s.db.Session(ctx, h)
	if errors.Is(err, driver.ErrSessionNotFound) {
		return ss, false, nil
	}
	if err != nil {
		return ss, false, err
	}
	if now.Sub(ds.LastSeen) > s.idle || now.Sub(ds.CreatedAt) > s.maxLife {
		return ss, false, s.db.DeleteSession(ctx, h)
	}
	if now.Sub(ds.LastSeen) > touchEvery {
		if err := s.db.TouchSession(ctx, h, now); err != nil {
			return ss, false, err
		}
	}
	return session{tokenHash: ds.TokenHash, csrf: ds.CSRF}, true, nil
}

func (s *sessionStore) delete(ctx context.Context, id string) error {
	return s.db.DeleteSession(ctx, sha256.Sum256([]byte(id)))
}

// secureRequest reports whether the session cookie may be marked Secure:
// over TLS (or behind a proxy that says so), and on loopback, where
// browsers accept Secure cookies over plain HTTP. On any other plain-HTTP
// address a Secure cookie would never come back, so the login page warns
// instead.
func secureRequest(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// setSessionCookie sets the session cookie, always Secure (as
// docs/dashboard.md says): a browser sends it back over TLS and on
// loopback only, so a session never travels in clear over a network. Over
// TLS the answer also asks the browser to keep to HTTPS (HSTS).
func (d *Dashboard) setSessionCookie(w http.ResponseWriter, r *http.Request, id string, maxAge int) {
	if r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
}

// view is what every page template gets.
type view struct {
	Title     string
	Principal Principal
	CSRF      string
	NodeID    string
	Mode      string
	Now       time.Time
	Tenants   []string // the tenants the caller may pick (admin: those with jobs)
	Tenant    string   // the tenant of a tenant page
	Section   string   // for the navigation: overview, jobs, chain, queues, nodes
	Flash     string   // a one-line result of the last action (from ?done=)
	Live      bool     // the page offers live refresh
	Intro     string   // in a demo, one line on what the page shows
	Data      any
}

// authed resolves the request's session to a principal, or redirects to
// the login page (and forgets a session whose token was revoked).
func (d *Dashboard) authed(w http.ResponseWriter, r *http.Request) (*view, bool) {
	c, err := r.Cookie(sessionCookie)
	now := d.cfg.Now()
	if err != nil || c.Value == "" {
		d.toLogin(w, r, "")
		return nil, false
	}
	ss, ok, err := d.sessions.get(r.Context(), c.Value, now)
	if err != nil {
		d.log.Error("dashboard: reading a session failed", "error", err)
		http.Error(w, "reading your session failed; the service log has the details", http.StatusServiceUnavailable)
		return nil, false
	}
	if !ok {
		d.toLogin(w, r, msgSessionEnded)
		return nil, false
	}
	p, err := d.cfg.Authenticate(r.Context(), ss.tokenHash)
	if errors.Is(err, ErrBadToken) {
		if err := d.sessions.delete(r.Context(), c.Value); err != nil {
			d.log.Warn("dashboard: deleting the session of a revoked token failed", "error", err)
		}
		d.setSessionCookie(w, r, "", -1)
		d.toLogin(w, r, msgTokenRevoked)
		return nil, false
	}
	if err != nil {
		d.log.Error("dashboard: checking a session's token failed", "error", err)
		http.Error(w, "checking your session failed; the service log has the details", http.StatusServiceUnavailable)
		return nil, false
	}
	v := &view{Principal: p, CSRF: ss.csrf, NodeID: d.cfg.NodeID, Mode: d.cfg.Queue.Mode().String(), Now: now,
		Flash: flashText(r.URL.Query().Get("done"))}
	if p.Admin {
		if v.Tenants, err = d.backend.Tenants(r.Context()); err != nil {
			d.log.Warn("dashboard: listing tenants failed", "error", err)
		}
	} else {
		v.Tenants = []string{p.Tenant}
	}
	return v, true
}

// The messages the login page shows after a redirect, by the code in its
// ?msg= parameter.
const (
	msgSessionEnded = "ended"
	msgTokenRevoked = "revoked"
	msgLoggedOut    = "out"
)

var loginMessages = map[string]string{
	msgSessionEnded: "Your session ended; log in again.",
	msgTokenRevoked: "Your token is no longer valid; log in with another.",
	msgLoggedOut:    "You are logged out.",
}

// toLogin redirects to the login page, which shows the message of code
// (one of loginMessages; empty for none).
func (d *Dashboard) toLogin(w http.ResponseWriter, r *http.Request, code string) {
	msg := code
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		q.Set("next", r.URL.RequestURI())
	}
	if msg != "" {
		q.Set("msg", msg)
	}
	target := "/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// page wraps a handler of a page that needs a login.
func (d *Dashboard) page(h func(w http.ResponseWriter, r *http.Request, v *view)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		v, ok := d.authed(w, r)
		if !ok {
			return
		}
		h(w, r, v)
	})
}

// tenantPage wraps a page under /tenants/{tenant}/: the tenant must be a
// valid id (400) the caller may act for (403), checked before anything
// is read, so a tenant token learns nothing about other tenants.
func (d *Dashboard) tenantPage(h func(w http.ResponseWriter, r *http.Request, v *view)) http.Handler {
	return d.page(func(w http.ResponseWriter, r *http.Request, v *view) {
		tenant := r.PathValue("tenant")
		if err := chain.ValidateTenantID(tenant); err != nil {
			d.fail(w, r, v, http.StatusBadRequest, "Not a tenant id: "+err.Error())
			return
		}
		if !v.Principal.MayActFor(tenant) {
			d.fail(w, r, v, http.StatusForbidden, "Your token may not see tenant "+tenant+".")
			return
		}
		v.Tenant = tenant
		h(w, r, v)
	})
}

// tenantAction is tenantPage for a POST: it also checks the form's CSRF
// token and that the request comes from the dashboard's own origin.
func (d *Dashboard) tenantAction(h func(w http.ResponseWriter, r *http.Request, v *view)) http.Handler {
	return d.tenantPage(func(w http.ResponseWriter, r *http.Request, v *view) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			d.fail(w, r, v, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(v.CSRF)) != 1 {
			d.fail(w, r, v, http.StatusForbidden, "The form is stale or did not come from this dashboard; reload the page and try again.")
			return
		}
		h(w, r, v)
	})
}

// sameOrigin checks the Origin header when the browser sends one (every
// current browser does on POST); SameSite=Strict and the CSRF token
// already stop cross-site forms, this is one more wall.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// loginPage shows the token form.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// Only the dashboard's own messages, by code: any text in ?msg= shown
	// as an alert on the real login page would be a phishing aid.
	d.renderLogin(w, r, http.StatusOK, loginMessages[r.URL.Query().Get("msg")])
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	next := safeNext(r.FormValue("next"))
	d.render(w, r, status, "login", &view{Title: "Log in", NodeID: d.cfg.NodeID, Now: d.cfg.Now(), Data: map[string]any{
		"Message": msg, "Next": next, "Insecure": !secureRequest(r),
	}})
}

// login checks the token and starts a session.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !sameOrigin(r) {
		d.renderLogin(w, r, http.StatusBadRequest, "The form could not be read; try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		d.renderLogin(w, r, http.StatusUnauthorized, "Enter an API token (ordo token create).")
		return
	}
	addr := authguard.ClientAddress(r)
	if left, blocked := d.cfg.Guard.Blocked(addr); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(left.Round(time.Second).Seconds())+1))
		d.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins from this address; wait a minute and try again.")
		return
	}
	h := sha256.Sum256([]byte(token))
	if _, err := d.cfg.Authenticate(r.Context(), h); err != nil {
		status, msg := http.StatusUnauthorized, "That token is not valid, or it was revoked."
		if !errors.Is(err, ErrBadToken) {
			d.log.Error("dashboard: checking a token failed", "error", err)
			status, msg = http.StatusServiceUnavailable, "Checking the token failed; the service log has the details."
		} else if d.cfg.Guard.Fail(addr) {
			d.log.Warn("dashboard: a login with a token that is not valid", "address", addr)
		}
		d.renderLogin(w, r, status, msg)
		return
	}
	id, err := d.sessions.create(r.Context(), h, d.cfg.Now())
	switch {
	case errors.Is(err, driver.ErrTooManySessions):
		d.renderLogin(w, r, http.StatusServiceUnavailable, "Too many people are logged in; try again later.")
		return
	case err != nil:
		d.log.Error("dashboard: starting a session failed", "error", err)
		d.renderLogin(w, r, http.StatusServiceUnavailable, "Starting your session failed; the service log has the details.")
		return
	}
	d.setSessionCookie(w, r, id, int(d.cfg.SessionMax.Seconds()))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// logout ends the session. It needs the session's CSRF token, so another
// site cannot log a user out.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		ss, ok, err := d.sessions.get(r.Context(), c.Value, d.cfg.Now())
		if err != nil {
			d.log.Error("dashboard: reading a session failed", "error", err)
			http.Error(w, "reading your session failed; the service log has the details", http.StatusServiceUnavailable)
			return
		}
		if ok {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 || !sameOrigin(r) {
				http.Error(w, "stale form: reload the page and log out again", http.StatusForbidden)
				return
			}
			if err := d.sessions.delete(r.Context(), c.Value); err != nil {
				d.log.Error("dashboard: ending a session failed", "error", err)
				http.Error(w, "ending your session failed; the service log has the details", http.StatusServiceUnavailable)
				return
			}
		}
	}
	d.setSessionCookie(w, r, "", -1)
	http.Redirect(w, r, "/login?msg="+msgLoggedOut, http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on this site: a path, not a URL.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return next
}
