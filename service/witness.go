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
	if m != nil {
		// Every series from the start, so that dashboards see zeros.
		for _, w := range cp.Witnesses {
			for _, r := range audit.WitnessResults {
				m.WitnessSubmissions.WithLabelValues(w.URL, r)
			}
		}
	}
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
