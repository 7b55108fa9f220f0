package drivertest

import (
	"errors"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// testTenantFence: a lease's changes name its tenant (driver.Transition,
// ExtendParams and ViolationParams carry Lease.TenantID), and a change
// that names another tenant than the job's is fenced out as a wrong token
// is: ErrLeaseLost, nothing changed, on every side the job has; a cancel
// naming another tenant is ErrJobNotFound. An empty tenant is any tenant.
// In a batch of transitions each is fenced by its own tenant.
func testTenantFence(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		ra, rb := n.enqueue(job("acme", "", 1)), n.enqueue(job("beta", "", 2))
		la := n.one("acme", queue.DequeueOptions{Owner: "w", LeaseFor: time.Minute})
		lb := n.one("beta", queue.DequeueOptions{Owner: "w", LeaseFor: time.Minute})
		if la.TenantID != "acme" || lb.TenantID != "beta" {
			t.Fatalf("leases of tenants %q and %q, want acme and beta", la.TenantID, lb.TenantID)
		}
		held := func(what string, l queue.Lease) {
			t.Helper()
			info := n.expectStatus(l.JobID, queue.StatusRunning)
			if info.LeaseToken != l.Token || info.LeaseExpiresAt.UnixMilli() != l.ExpiresAt.UnixMilli() || info.LastError != "" {
				t.Errorf("%s: job %s has lease (%s, %v, last error %q), want its lease (%s, %v) unchanged",
					what, l.JobID, info.LeaseToken, info.LeaseExpiresAt, info.LastError, l.Token, l.ExpiresAt)
			}
		}
		now := n.now()
		wrong := "beta"
		lost := map[string]error{
			"TransitionJob": n.b.TransitionJob(h.ctx, driver.Transition{JobID: la.JobID, TenantID: wrong, Token: la.Token,
				Status: driver.StatusSucceeded, Now: now}),
			"ExtendLease": n.b.ExtendLease(h.ctx, driver.ExtendParams{JobID: la.JobID, TenantID: wrong, Token: la.Token,
				Until: now.Add(time.Hour), Now: now}),
			"MarkChainViolation": n.b.MarkChainViolation(h.ctx, driver.ViolationParams{JobID: la.JobID, TenantID: wrong, Token: la.Token,
				Reason: "x", Now: now}),
		}
		if h.tg.Begin != nil {
			tx := h.tg.Begin(t, n.b)
			lost["TransitionJobTx"] = n.b.TransitionJobTx(h.ctx, tx.Tx, driver.Transition{JobID: la.JobID, TenantID: wrong, Token: la.Token,
				Status: driver.StatusFailed, Error: "x", Now: now})
			if err := tx.Commit(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
		for call, err := range lost {
			if !errors.Is(err, driver.ErrLeaseLost) {
				t.Errorf("%s of acme's job naming tenant %s: %v, want ErrLeaseLost", call, wrong, err)
			}
		}
		if err := n.b.CancelJob(h.ctx, driver.CancelParams{JobID: la.JobID, TenantID: wrong, Now: now}); !errors.Is(err, driver.ErrJobNotFound) {
			t.Errorf("CancelJob of acme's job naming tenant %s: %v, want ErrJobNotFound", wrong, err)
		}
		if err := n.q.CancelInTenant(h.ctx, wrong, la.JobID, "x"); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("CancelInTenant(%s) of acme's job: %v, want ErrJobNotFound", wrong, err)
		}
		if err := n.q.CancelInTenant(h.ctx, "", la.JobID, "x"); !errors.Is(err, queue.ErrInvalidJob) {
			t.Errorf("CancelInTenant with no tenant: %v, want ErrInvalidJob", err)
		}
		held("after changes naming another tenant", la)

		// A batch: each transition is fenced by its own tenant.
		errs, err := n.b.TransitionJobs(h.ctx, []driver.Transition{
			{JobID: la.JobID, TenantID: "beta", Token: la.Token, Status: driver.StatusSucceeded, Now: now},
			{JobID: lb.JobID, TenantID: "acme", Token: lb.Token, Status: driver.StatusSucceeded, Now: now},
		})
		if err != nil || len(errs) != 2 || !errors.Is(errs[0], driver.ErrLeaseLost) || !errors.Is(errs[1], driver.ErrLeaseLost) {
			t.Fatalf("TransitionJobs with each job's tenant swapped: %v, %v; want ErrLeaseLost for both", errs, err)
		}
		held("after a batch naming the wrong tenants", la)
		held("after a batch naming the wrong tenants", lb)

		// The right tenant, and none (any tenant), in one batch.
		n.advance(time.Second)
		la, err = n.q.Extend(h.ctx, la, time.Hour)
		if err != nil {
			t.Fatalf("Extend with the lease's tenant: %v", err)
		}
		if err := n.b.ExtendLease(h.ctx, driver.ExtendParams{JobID: lb.JobID, Token: lb.Token, Until: n.now().Add(time.Hour), Now: n.now()}); err != nil {
			t.Fatalf("ExtendLease with no tenant: %v", err)
		}
		errs, err = n.b.TransitionJobs(h.ctx, []driver.Transition{
			{JobID: la.JobID, TenantID: "acme", Token: la.Token, Status: driver.StatusSucceeded, Now: n.now()},
			{JobID: lb.JobID, Token: lb.Token, Status: driver.StatusFailed, Error: "done with", Now: n.now()},
		})
		if err != nil || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
			t.Fatalf("TransitionJobs with the right tenant and with none: %v, %v; want both applied", errs, err)
		}
		n.expectStatus(ra.JobID, queue.StatusSucceeded)
		if info := n.expectStatus(rb.JobID, queue.StatusFailed); info.LastError != "done with" {
			t.Errorf("beta's job: last error %q, want the transition's", info.LastError)
		}

		// A cancel in the job's tenant.
		rc := n.enqueue(job("acme", "", 3))
		if err := n.q.CancelInTenant(h.ctx, "acme", rc.JobID, "not needed"); err != nil {
			t.Fatalf("CancelInTenant in the job's tenant: %v", err)
		}
		if err := n.q.CancelInTenant(h.ctx, "acme", rc.JobID, ""); !errors.Is(err, queue.ErrJobFinished) {
			t.Errorf("second CancelInTenant: %v, want ErrJobFinished", err)
		}
		if err := n.q.CancelInTenant(h.ctx, "beta", rc.JobID, ""); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("CancelInTenant of a finished job of another tenant: %v, want ErrJobNotFound", err)
		}
		n.expectStatus(rc.JobID, queue.StatusCancelled)
	})
}
