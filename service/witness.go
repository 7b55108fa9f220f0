package service

import (
	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/config"
)

// configureWitnesses gives the checkpointer the witnesses of
// Ordo:Audit:Witnesses (validated with the configuration), the store of
// their cosignatures, and ordo_witness_submissions_total. The list is
// read at start: a reload does not change it.
func (s *Service) configureWitnesses(cp *audit.Checkpointer, cfg *config.Config) error {
	for _, w := range cfg.Ordo.Audit.Witnesses {
		k, err := audit.ParseWitnessKey(w.Key)
		if err != nil {
			return err
		}
		cp.Witnesses = append(cp.Witnesses, &audit.Witness{URL: w.URL, Key: k})
	}
	if len(cp.Witnesses) == 0 {
		return nil
	}
	cp.Cosignatures = audit.CosignatureStoreOf(s.db.AuditStore())
	m, hook := s.q.Metrics(), s.opts.OnWitnessSubmission
	cp.WitnessObserver = func(witness, result string) {
		if m != nil {
			m.WitnessSubmissions.WithLabelValues(witness, result).Inc()
		}
		if hook != nil {
			hook(witness, result)
		}
	}
	return nil
}

// exposeWitnessSeries makes every series of ordo_witness_submissions_total
// of the configured witnesses exist from the start, at zero, so that
// alerts (deploy/prometheus) and dashboards see a witness before its first
// submission, and whether or not this node's checkpointer runs.
func (s *Service) exposeWitnessSeries(cfg *config.Config) {
	m := s.q.Metrics()
	if m == nil {
		return
	}
	for _, w := range cfg.Ordo.Audit.Witnesses {
		for _, r := range audit.WitnessResults {
			m.WitnessSubmissions.WithLabelValues(w.URL, r)
		}
	}
}
