package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/strictjson"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// The built-in kinds `ordo serve` runs.
const (
	// KindHTTP POSTs its payload's body to its payload's url; 2xx
	// succeeds, anything else is retried with backoff.
	KindHTTP = "http"
	// KindNoop succeeds at once.
	KindNoop = "noop"
)

// HTTPPayload is the payload of an http job.
type HTTPPayload struct {
	// URL is where the body is POSTed: http or https, on a host of
	// Ordo:Worker:HttpKind:AllowedHosts.
	URL string `json:"url"`
	// Body is sent as its JSON text with Content-Type application/json;
	// a JSON string is sent as its contents, with ContentType (default
	// text/plain; charset=utf-8). Absent or null sends no body.
	Body json.RawMessage `json:"body,omitempty"`
	// ContentType overrides the Content-Type header.
	ContentType string `json:"content_type,omitempty"`
	// Headers are added to the request (not Host, Content-Length,
	// Transfer-Encoding or Connection).
	Headers map[string]string `json:"headers,omitempty"`
}

// errNotAllowed marks a request the allow-list forbids: retrying cannot
// help.
var errNotAllowed = errors.New("not allowed by Ordo:Worker:HttpKind:AllowedHosts")

// hostList is the http kind's allow-list.
type hostList struct {
	exact    map[string]bool // "host" or "host:port", lower case
	suffixes []string        // ".example.com" from "*.example.com"
}

func newHostList(patterns []string) *hostList {
	h := &hostList{exact: map[string]bool{}}
	for _, p := range patterns {
		p = strings.ToLower(p)
		if rest, ok := strings.CutPrefix(p, "*."); ok {
			h.suffixes = append(h.suffixes, "."+rest)
			continue
		}
		h.exact[p] = true
	}
	return h
}

// allows reports whether u is listed: "host:port" allows that port, a
// bare "host" or "*.domain" only the scheme's own (80 for http, 443 for
// https), so that listing a web server does not open its other ports.
func (h *hostList) allows(u *url.URL) bool {
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return false
	}
	defaultPort := map[string]string{"http": "80", "https": "443"}[u.Scheme]
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if h.exact[net.JoinHostPort(host, port)] {
		return true
	}
	if port != defaultPort {
		return false
	}
	if h.exact[host] {
		return true
	}
	for _, s := range h.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// checkHTTPPayload validates an http job's payload against the allow-list
// in force: the error names the field.
func (s *Service) checkHTTPPayload(payload []byte) (*HTTPPayload, *url.URL, *fieldError) {
	var p HTTPPayload
	// Member names match exactly: a worker in another language reads
	// payload.url, so {"url": A, "URL": B} must not be checked as B.
	if err := strictjson.Decode(payload, &p); err != nil {
		field := "payload"
		var se *strictjson.Error
		if errors.As(err, &se) && se.Path != "" {
			field += "." + se.Path
		}
		return nil, nil, &fieldError{Field: field, Msg: "an http job's payload is {\"url\": ..., \"body\": ..., \"content_type\": ..., \"headers\": {...}}: " + err.Error()}
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, nil, &fieldError{Field: "payload.url", Msg: fmt.Sprintf("url %q: want an absolute http:// or https:// URL without user info", p.URL)}
	}
	if !s.hosts.Load().allows(u) {
		return nil, nil, &fieldError{Field: "payload.url", Msg: fmt.Sprintf("host %q is %v", u.Host, errNotAllowed)}
	}
	for k := range p.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return nil, nil, &fieldError{Field: "payload.headers", Msg: fmt.Sprintf("header %q cannot be set", k)}
		}
	}
	return &p, u, nil
}

// httpClient returns the client of the http kind: redirects only to
// allowed hosts.
func (s *Service) httpClient(cfg *config.Config) *http.Client {
	if s.opts.HTTPClient != nil {
		return s.opts.HTTPClient
	}
	return &http.Client{
		Timeout: cfg.Ordo.Worker.HttpKind.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if !s.hosts.Load().allows(req.URL) {
				return fmt.Errorf("redirect to %s: %w", req.URL.Host, errNotAllowed)
			}
			return nil
		},
	}
}

// runHTTP is the http kind's handler.
func (s *Service) runHTTP(client *http.Client) func(ctx context.Context, l *queue.Lease) error {
	return func(ctx context.Context, l *queue.Lease) error {
		p, u, ferr := s.checkHTTPPayload(l.Payload)
		if ferr != nil {
			return worker.NoRetry(errors.New(ferr.Msg))
		}
		var body io.Reader
		contentType := p.ContentType
		if len(p.Body) > 0 && string(p.Body) != "null" {
			var text string
			if json.Unmarshal(p.Body, &text) == nil {
				body = strings.NewReader(text)
				if contentType == "" {
					contentType = "text/plain; charset=utf-8"
				}
			} else {
				body = bytes.NewReader(p.Body)
				if contentType == "" {
					contentType = "application/json"
				}
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
		if err != nil {
			return worker.NoRetry(err)
		}
		for k, v := range p.Headers {
			req.Header.Set(k, v)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		req.Header.Set("User-Agent", "ordo")
		req.Header.Set("Ordo-Job-Id", l.JobID.String())
		req.Header.Set("Ordo-Tenant", l.TenantID)
		req.Header.Set("Ordo-Attempt", fmt.Sprint(l.Attempt))
		resp, err := client.Do(req)
		if err != nil {
			if errors.Is(err, errNotAllowed) {
				return worker.NoRetry(fmt.Errorf("POST %s: %w", shownURL(u), errNotAllowed))
			}
			return fmt.Errorf("POST %s: %s", shownURL(u), transportFailure(err))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("POST %s: %s", shownURL(u), resp.Status)
		}
		return nil
	}
}

// shownURL is u as a job's last error and the log show it: without user
// info, query or fragment, which may hold secrets.
func shownURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// transportFailure is what a failed request's error may tell whoever
// reads the job: that it timed out, or that it failed. Not the resolved
// address, nor "refused" against "reset" against "EOF": a tenant could
// otherwise map which ports and names answer from where ordo runs.
func transportFailure(err error) string {
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "the request timed out"
	}
	return "the request failed before a response (connection or protocol error)"
}

// newWorkerClient builds the worker client: the built-in kinds, any the
// embedding program adds, Ordo:Worker's settings.
func (s *Service) newWorkerClient(cfg *config.Config) (*worker.Client, error) {
	workers := worker.NewWorkers()
	w := cfg.Ordo.Worker
	if err := worker.AddFuncSafely(workers, KindHTTP, s.runHTTP(s.httpClient(cfg)), worker.KindOptions{Timeout: w.HttpKind.Timeout + w.HttpKind.Timeout/10}); err != nil {
		return nil, err
	}
	if err := worker.AddFuncSafely(workers, KindNoop, func(context.Context, *queue.Lease) error { return nil }); err != nil {
		return nil, err
	}
	if s.opts.Workers != nil {
		if err := s.opts.Workers(workers); err != nil {
			return nil, err
		}
	}
	wc := worker.Config{
		Workers:        workers,
		MaxWorkers:     w.MaxWorkers,
		ID:             cfg.Ordo.NodeId + "-" + shortRandom(),
		LeaseFor:       w.LeaseFor,
		PollInterval:   w.PollInterval,
		DefaultTimeout: w.Timeout,
		Retention:      retention(cfg.Ordo.Retention),
		Logger:         s.log,
		OnEvent:        func(e worker.Event) { s.metrics.onEvent(e) },
	}
	if s.opts.WorkerConfig != nil {
		s.opts.WorkerConfig(&wc)
	}
	return worker.NewClient(s.q, wc)
}

// retention is the file's retention as the worker takes it: in the file
// 0 keeps a status forever, which the Go API spells as a negative
// duration (its zero is the default, as River's is).
func retention(r config.Retention) queue.Retention {
	keep := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return queue.Retention{Succeeded: keep(r.Succeeded), Cancelled: keep(r.Cancelled), Failed: keep(r.Failed)}
}
