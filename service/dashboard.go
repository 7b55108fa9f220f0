package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/dashboard"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/metrics"
	"github.com/ordo-sched/ordo/worker"
)

// maxStoredIssues bounds the issues kept with a tenant's latest
// verification: enough for the dashboard's table; the verifier reports
// every issue to whoever runs it.
const maxStoredIssues = 200

// now is the service's wall clock (Options.Wall, or the system clock).
func (s *Service) now() time.Time {
	if w := s.opts.Wall; w != nil {
		return time.UnixMilli(w.UnixMilli())
	}
	return time.Now()
}

// newDashboard builds the web dashboard mounted at / (docs/dashboard.md),
// or says why the backend cannot serve it.
func (s *Service) newDashboard() (*dashboard.Dashboard, error) {
	cfg := dashboard.Config{
		Queue:        s.q,
		Authenticate: s.dashboardPrincipal,
		Verify:       s.verifyAndRecord,
		PublicKey:    s.audit,
		NodeID:       s.cfg.Load().Ordo.NodeId,
		Now:          s.now,
		Logger:       s.log,
		Guard:        s.guard,
		MaxSessions:  s.cfg.Load().Ordo.Http.MaxSessions,
		MaxPerToken:  s.cfg.Load().Ordo.Http.MaxSessionsPerToken,
		Demo:         s.cfg.Load().Ordo.Demo.Enabled,
	}
	cfg.Audit = s.q.Backend().AuditStore()
	if s.client != nil {
		cfg.Worker = workerInfo(s.client)
	}
	return dashboard.New(cfg)
}

// workerInfo is what the dashboard shows of the worker client: its
// queues and concurrency, and its periodic jobs with their schedules.
func workerInfo(c *worker.Client) *dashboard.WorkerInfo {
	info := &dashboard.WorkerInfo{MaxWorkers: c.MaxWorkers(), Queues: func() []dashboard.WorkerQueue {
		var out []dashboard.WorkerQueue
		for _, q := range c.Queues() {
			out = append(out, dashboard.WorkerQueue{Name: q.Name, MaxWorkers: q.MaxWorkers, Running: q.Running, Kinds: q.Kinds,
				AllKinds: q.AllKinds, Tenants: q.Tenants.String(), StrictPartitions: q.StrictPartitions})
		}
		return out
	}}
	for _, p := range c.PeriodicJobs() {
		info.Periodic = append(info.Periodic, dashboard.PeriodicJob{Name: p.Name, TenantID: p.TenantID,
			Schedule: scheduleText(p.Schedule), Next: p.Schedule.Next})
	}
	return info
}

// scheduleText is how a schedule describes itself (worker.Every and
// worker.Cron do), else its Go type: a schedule of the embedding
// program's own may say nothing more.
func scheduleText(s worker.Schedule) string {
	if st, ok := s.(fmt.Stringer); ok {
		return st.String()
	}
	return fmt.Sprintf("%T", s)
}

// dashboardPrincipal resolves a dashboard session's token hash exactly as
// authenticate resolves a bearer token: configured tokens first (as
// reloaded), then the database's, revoked ones refused, so revoking a
// token ends its sessions at their next request.
func (s *Service) dashboardPrincipal(ctx context.Context, h [32]byte) (dashboard.Principal, error) {
	p, err := s.auth.byHash(ctx, h)
	if errors.Is(err, errBadToken) {
		return dashboard.Principal{}, dashboard.ErrBadToken
	}
	if err != nil {
		return dashboard.Principal{}, err
	}
	return dashboard.Principal{Admin: p.admin, Tenant: p.tenant, Name: p.name}, nil
}

// verifyAndRecord verifies all of tenant's chains and keeps the result as
// the tenant's latest verification.
func (s *Service) verifyAndRecord(ctx context.Context, tenant, source string) (*audit.Result, error) {
	v := &audit.Verifier{Store: s.q.Backend().AuditStore(), Metrics: s.q.Metrics(), Key: s.audit}
	res, err := v.Verify(ctx, tenant)
	if err != nil {
		return nil, err
	}
	s.recordVerification(ctx, tenant, res, source)
	return res, nil
}

// recordVerification keeps res as tenant's latest verification. The
// verification itself succeeded, so a failure to record it is logged.
func (s *Service) recordVerification(ctx context.Context, tenant string, res *audit.Result, source string) {
	ops := s.q.Backend()
	issues := res.Issues
	if len(issues) > maxStoredIssues {
		issues = issues[:maxStoredIssues]
	}
	if issues == nil {
		issues = []audit.Issue{}
	}
	b, err := json.Marshal(issues)
	if err == nil {
		err = ops.SaveVerification(ctx, driver.VerificationRecord{TenantID: tenant, VerifiedAt: s.now(), Valid: res.Valid,
			EntriesChecked: res.EntriesChecked, IssueCount: res.IssueCount, Issues: b, Source: source})
	}
	if err != nil {
		s.log.Error("recording a verification result failed", "tenant", tenant, "error", err)
	}
}

// reportNode writes this node's clock to scheduler.nodes every
// nodeReportInterval, and as soon as it sees a new clock refusal, until
// ctx ends.
func (s *Service) reportNode(ctx context.Context) {
	ops := s.q.Backend()
	var lastRefusals int64 = -1
	var lastReport time.Time
	tick := time.NewTicker(refusalCheckInterval)
	defer tick.Stop()
	for {
		refusals := counterValue(s.q.Metrics())
		if refusals != lastRefusals || time.Since(lastReport) >= nodeReportInterval {
			if err := s.writeNodeReport(ctx, ops, refusals); err != nil && ctx.Err() == nil {
				s.log.Warn("reporting this node's clock failed", "error", err)
			}
			lastRefusals, lastReport = refusals, time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ReportNode writes this node's clock, mode and clock refusals to the
// nodes table now, as the service otherwise does every few seconds.
func (s *Service) ReportNode(ctx context.Context) error {
	return s.writeNodeReport(ctx, s.q.Backend(), counterValue(s.q.Metrics()))
}

func (s *Service) writeNodeReport(ctx context.Context, ops driver.Operations, refusals int64) error {
	clock := s.q.Clock()
	return ops.ReportNode(ctx, driver.NodeReport{NodeID: clock.NodeID(), StartedAt: s.startedAt, Now: s.now(),
		LastHLC: clock.Current().String(), Mode: s.q.Mode().String(), ClockRefusals: refusals})
}

// counterValue reads ordo_clock_drift_refusals_total of this process.
func counterValue(m *metrics.Metrics) int64 {
	if m == nil || m.ClockDriftRefusals == nil {
		return 0
	}
	var out dto.Metric
	if err := m.ClockDriftRefusals.Write(&out); err != nil || out.Counter == nil {
		return 0
	}
	return int64(out.Counter.GetValue())
}

// isAPIPath reports whether a path belongs to the JSON API, whose unknown
// routes answer JSON errors; everything else is the dashboard's.
func isAPIPath(p string) bool { return p == "/v1" || strings.HasPrefix(p, "/v1/") }

// notFoundOrDashboard serves the dashboard, or the API's JSON 404 under
// /v1/ (and for every path when the dashboard is off).
// A path the API serves with other methods gets 405 and an Allow header
// (allowed lists them), not 404.
func (s *Service) notFoundOrDashboard(d http.Handler, allowed func(*http.Request) []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d == nil || isAPIPath(r.URL.Path) {
			if methods := allowed(r); len(methods) > 0 {
				w.Header().Set("Allow", strings.Join(methods, ", "))
				writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
					Msg: fmt.Sprintf("%s is not served at this path; it takes %s", r.Method, strings.Join(methods, ", "))})
				return
			}
			writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Msg: "no such route: see docs/api.md"})
			return
		}
		d.ServeHTTP(w, r)
	}
}
