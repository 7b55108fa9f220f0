package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/service"
)

// TestPeriodicVerificationIsTheLastVerification: with
// Ordo:Audit:VerifyInterval, the service verifies by itself, and the
// overview's "Last verification" and the guide's metrics show its rounds:
// passed, then failed once an entry appended after the last round is
// changed, and failed again at the next round.
func TestPeriodicVerificationIsTheLastVerification(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		rounds := testsignal.New[*audit.Round]()
		e := newEnvOpts(t, dbURL, func(c *config.Config) {
			c.Ordo.Audit.VerifyInterval = time.Hour // one round at the start; the test triggers the others
		}, func(o *service.Options) {
			o.OnVerifyRound = func(r *audit.Round, err error) {
				if err != nil {
					t.Errorf("periodic round: %v", err)
				}
				rounds.Record(r)
			}
		})
		rounds.Await(t, "the round at the start", func(r *audit.Round) bool { return r.Led })
		for i := range 3 {
			e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": i}})
		}
		b := e.login(adminToken)
		b.get("/").must(t, http.StatusOK, `data-verification="never"`)
		r, err := e.Svc.VerifyChainsNow(context.Background())
		if err != nil || !r.Led || !r.Valid || r.EntriesChecked != 3 {
			t.Fatalf("round after three enqueues: %+v, %v", r, err)
		}
		b.get("/").must(t, http.StatusOK, `data-verification="passed"`)
		b.get("/tenants/acme/chain").must(t, http.StatusOK, `data-valid="true"`, service.PeriodicVerificationSource)

		more := e.enqueue("acme", acmeToken, map[string]any{"kind": "report", "payload": map[string]any{"n": 3}})
		e.exec(`UPDATE {p}scheduler_log SET payload = '{"n":999}' WHERE CAST(job_id AS TEXT) = `+e.Ph(1), more)
		for round := range 2 {
			r, err = e.Svc.VerifyChainsNow(context.Background())
			if err != nil || r.Valid || r.IssueCount != 1 || r.EntriesChecked != 1 {
				t.Fatalf("round %d after the tampering: %+v, %v", round+1, r, err)
			}
			b.get("/").must(t, http.StatusOK, `data-verification="failed"`, "failed · 1 issues")
			metrics := e.metrics()
			if got := regexp.MustCompile(`(?m)^scheduler_chain_verifications_total\{result="invalid"\} (\S+)$`).FindStringSubmatch(metrics); got == nil || got[1] != []string{"1", "2"}[round] {
				t.Fatalf("round %d: scheduler_chain_verifications_total{result=invalid} = %v", round+1, got)
			}
		}
		p := b.get("/tenants/acme/chain").must(t, http.StatusOK, `data-valid="false"`, `data-issue="payload_hash_mismatch"`)
		if !strings.Contains(p.body, more[:12]) {
			t.Error("the issue does not name the tampered job")
		}
	})
}

// metrics reads /metrics (served to anyone on loopback).
func (e *env) metrics() string {
	e.T.Helper()
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		e.T.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}
