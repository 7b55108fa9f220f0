// Package metrics holds ordo's Prometheus metrics: those of the HLC
// migration guide under exactly its names and types
// (scheduler_hlc_enqueues_total, scheduler_chain_verifications_total, ...)
// and ordo's own. The queue, the verifier and the snapshotter count into
// one *Metrics; the service registers it. A name here is a promise to the
// operators who alert on it: renaming one breaks their dashboards.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are ordo's Prometheus metrics, with exactly the names and
// types of the migration guide, plus ordo's own.
type Metrics struct {
	HlcEnqueues        prometheus.Counter   // scheduler_hlc_enqueues_total
	HlcDeduplicated    prometheus.Counter   // scheduler_hlc_enqueue_deduplicated_total
	HlcEnqueueDuration prometheus.Histogram // scheduler_hlc_enqueue_duration_seconds
	HlcDequeues        prometheus.Counter   // scheduler_hlc_dequeues_total
	HlcDequeuedEntries prometheus.Counter   // scheduler_hlc_dequeued_entries_total
	ChainVerifications *prometheus.CounterVec
	ChainIssues        prometheus.Counter // scheduler_chain_verification_issues_total
	BatchSnapshots     prometheus.Counter // scheduler_batch_snapshots_created_total
	LegacyEnqueues     prometheus.Counter
	LegacyDequeues     prometheus.Counter
	LegacyDeduplicated prometheus.Counter
	LeaseExpiries      prometheus.Counter
	ClockDriftRefusals prometheus.Counter
	DequeueDuration    *prometheus.HistogramVec // by ordering
	Backfilled         prometheus.Counter
	DrainedToLegacy    prometheus.Counter
	JobTransitions     *prometheus.CounterVec // by resulting status
	JobsPruned         *prometheus.CounterVec // ordo_jobs_pruned_total, by side
	// WitnessSubmissions is ordo_witness_submissions_total{witness,result}:
	// checkpoints submitted to each witness (its URL), by result (see
	// audit.WitnessResults; "inconsistent" is a witness refusing a
	// rewritten history).
	WitnessSubmissions *prometheus.CounterVec
}

// New creates the metrics and registers them with reg (nil: none).
// Registering the same names twice on one registry fails; give every Queue
// in a process the same *Metrics instead.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		HlcEnqueues:     counter("scheduler_hlc_enqueues_total", "Total HLC enqueue operations (jobs appended to a chain)."),
		HlcDeduplicated: counter("scheduler_hlc_enqueue_deduplicated_total", "Deduplicated enqueue operations."),
		HlcEnqueueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scheduler_hlc_enqueue_duration_seconds", Help: "Enqueue operation duration.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		HlcDequeues:        counter("scheduler_hlc_dequeues_total", "Total HLC dequeue operations."),
		HlcDequeuedEntries: counter("scheduler_hlc_dequeued_entries_total", "Total entries dequeued in HLC order."),
		ChainVerifications: counterVec("scheduler_chain_verifications_total", "Chain verification operations, by result (valid or invalid).", "result"),
		ChainIssues:        counter("scheduler_chain_verification_issues_total", "Chain verification issues found."),
		BatchSnapshots:     counter("scheduler_batch_snapshots_created_total", "Batch snapshots created."),
		LegacyEnqueues:     counter("ordo_legacy_enqueues_total", "Jobs written to the legacy table."),
		LegacyDequeues:     counter("ordo_legacy_dequeued_jobs_total", "Jobs leased in legacy (priority, created_at) order."),
		LegacyDeduplicated: counter("ordo_legacy_enqueue_deduplicated_total", "Legacy-only enqueues of a job that already existed."),
		LeaseExpiries:      counter("ordo_lease_expiries_total", "Running jobs whose lease expired and were rescued or failed."),
		ClockDriftRefusals: counter("ordo_clock_drift_refusals_total", "Enqueues refused because a chain head was beyond MaxClockDriftMs."),
		DequeueDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ordo_dequeue_duration_seconds", Help: "Dequeue latency by ordering mode (hlc or legacy).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"ordering"}),
		Backfilled:      counter("ordo_backfilled_jobs_total", "Legacy jobs appended to the HLC chain by backfill."),
		DrainedToLegacy: counter("ordo_drained_to_legacy_jobs_total", "HLC-only jobs copied to the legacy table by rollback drain."),
		JobTransitions:  counterVec("ordo_job_transitions_total", "Job state changes made through the queue, by resulting status.", "status"),
		JobsPruned: counterVec("ordo_jobs_pruned_total",
			"Finished jobs' state rows deleted by retention, by side (hlc: job_state, legacy: scheduler.jobs); their log entries stay.", "side"),
		WitnessSubmissions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ordo_witness_submissions_total",
			Help: "Checkpoints submitted to witnesses, by witness URL and result (cosigned, inconsistent: the witness refused a rewritten history, refused, conflict, unreachable, bad_response, error)."},
			[]string{"witness", "result"}),
	}
	// Pre-create both result series so dashboards see zeros, not gaps.
	m.ChainVerifications.WithLabelValues("valid")
	m.ChainVerifications.WithLabelValues("invalid")
	m.JobsPruned.WithLabelValues("hlc")
	m.JobsPruned.WithLabelValues("legacy")
	if reg != nil {
		for _, c := range []prometheus.Collector{
			m.HlcEnqueues, m.HlcDeduplicated, m.HlcEnqueueDuration, m.HlcDequeues, m.HlcDequeuedEntries,
			m.ChainVerifications, m.ChainIssues, m.BatchSnapshots, m.LegacyEnqueues, m.LegacyDequeues,
			m.LegacyDeduplicated, m.LeaseExpiries, m.ClockDriftRefusals, m.DequeueDuration, m.Backfilled,
			m.DrainedToLegacy, m.JobTransitions, m.JobsPruned, m.WitnessSubmissions,
		} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
}
