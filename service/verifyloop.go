package service

import (
	"context"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
)

// PeriodicVerificationSource is the source of the verification records
// the periodic verifier keeps for the dashboard's "Last verification".
const PeriodicVerificationSource = "periodic"

// newIncrementalVerifier is the periodic verifier of Ordo:Audit:
// leader-elected among the nodes (audit.VerifierLeadershipName), checking
// checkpoint signatures with the configured public key when there is one.
func (s *Service) newIncrementalVerifier(cfg *config.Config) *audit.IncrementalVerifier {
	return &audit.IncrementalVerifier{
		Store: s.db.AuditStore(), Metrics: s.q.Metrics(), Key: s.audit, Leader: s.db, Holder: cfg.Ordo.NodeId,
		Interval: cfg.Ordo.Audit.VerifyInterval, Now: s.now, Logger: s.log,
		OnRound: func(r *audit.Round, err error) { s.recordRound(context.Background(), r, err) },
	}
}

// startVerifier runs the periodic verifier until ctx ends, when
// Ordo:Audit:VerifyInterval is not 0.
func (s *Service) startVerifier(ctx context.Context, cfg *config.Config) {
	if cfg.Ordo.Audit.VerifyInterval <= 0 {
		return
	}
	v := s.newIncrementalVerifier(cfg)
	s.bgWG.Add(1)
	go func() {
		defer s.bgWG.Done()
		_ = v.Run(ctx) // logs its own failures
	}()
}

// VerifyChainsNow runs one round of the periodic verification at once, as
// the service otherwise does every Ordo:Audit:VerifyInterval, and records
// it the same way. Another node holding the verifier's lease makes it do
// nothing (Round.Led false).
func (s *Service) VerifyChainsNow(ctx context.Context) (*audit.Round, error) {
	v := s.newIncrementalVerifier(s.cfg.Load())
	r, err := v.RunOnce(ctx)
	s.recordRound(ctx, r, err)
	return r, err
}

// recordRound keeps each tenant's part of a round the leader made as the
// tenant's latest verification (the dashboard's "Last verification"),
// then tells Options.OnVerifyRound.
func (s *Service) recordRound(ctx context.Context, r *audit.Round, err error) {
	if r != nil && r.Led {
		tenants, results := r.Tenants()
		for _, t := range tenants {
			s.recordVerification(ctx, t, results[t], PeriodicVerificationSource)
		}
	}
	if s.opts.OnVerifyRound != nil {
		s.opts.OnVerifyRound(r, err)
	}
}
