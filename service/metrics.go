package service

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// serviceMetrics are ordo's own metrics beside the queue's (which carry
// the guide's names, from metrics.New).
type serviceMetrics struct {
	workerEvents *prometheus.CounterVec // ordo_worker_events_total{event, kind}
	reloads      *prometheus.CounterVec // ordo_config_reloads_total{result}
	requests     *prometheus.CounterVec // ordo_http_requests_total{route, code}
}

// countedStates are the states ordo_jobs reports: those of jobs that can
// still run. Counting finished jobs would read every row ever written at
// every scrape; their totals are ordo_job_transitions_total.
var countedStates = []queue.Status{queue.StatusPending, queue.StatusScheduled, queue.StatusRunning}

func newServiceMetrics(s *Service) (*serviceMetrics, error) {
	m := &serviceMetrics{
		workerEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_worker_events_total",
			Help: "Events of the built-in worker client (job_started, job_succeeded, job_failed, ...), by job kind where the event concerns a job.",
		}, []string{"event", "kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_config_reloads_total",
			Help: "Configuration reloads (file change or SIGHUP), by result (success or failure).",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_http_requests_total",
			Help: "HTTP API requests, by route pattern and status code.",
		}, []string{"route", "code"}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	clock := s.q.Clock()
	collectors := []prometheus.Collector{
		m.workerEvents, m.reloads, m.requests,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordo_hlc_clock_offset_seconds",
			Help: "How far this node's HLC (its last timestamp's physical part) is ahead of its wall clock: " +
				"non-zero after it merged a chain head stamped by a node whose clock runs ahead.",
		}, func() float64 {
			return float64(max(clock.Current().Physical-clock.Wall(), 0)) / 1000
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ordo_hlc_max_clock_drift_seconds",
			Help: "The MaxClockDriftMs in force, in seconds: the largest lead of a chain head over this node's wall clock that an enqueue accepts.",
		}, func() float64 { return float64(s.q.Options().MaxClockDriftMs) / 1000 }),
		&optionsCollector{q: s.q},
		&jobsCollector{s: s},
	}
	for _, c := range collectors {
		if err := s.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// onEvent counts a worker event.
func (m *serviceMetrics) onEvent(e worker.Event) {
	m.workerEvents.WithLabelValues(e.Type.String(), e.Lease.Kind).Inc()
}

// optionsCollector reports the guide's options and the mode in force.
type optionsCollector struct{ q *queue.Queue }

var (
	modeDesc = prometheus.NewDesc("ordo_queue_mode",
		"1 for the queue mode in force (legacy, dual-write, hlc-reads, hlc-only), 0 for the others.", []string{"mode"}, nil)
	optionDesc = prometheus.NewDesc("ordo_queue_option",
		"The guide's boolean SchedulerHlcOptions in force: 1 true, 0 false.", []string{"option"}, nil)
)

func (c *optionsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- modeDesc
	ch <- optionDesc
}

func (c *optionsCollector) Collect(ch chan<- prometheus.Metric) {
	o := c.q.Options()
	for _, m := range []queue.Mode{queue.ModeLegacy, queue.ModeDualWrite, queue.ModeDualWriteHlc, queue.ModeHlcOnly} {
		ch <- prometheus.MustNewConstMetric(modeDesc, prometheus.GaugeValue, b2f(o.Mode() == m), m.String())
	}
	ch <- prometheus.MustNewConstMetric(optionDesc, prometheus.GaugeValue, b2f(o.EnableHlcOrdering), "EnableHlcOrdering")
	ch <- prometheus.MustNewConstMetric(optionDesc, prometheus.GaugeValue, b2f(o.DualWriteMode), "DualWriteMode")
	ch <- prometheus.MustNewConstMetric(optionDesc, prometheus.GaugeValue, b2f(o.VerifyOnDequeue), "VerifyOnDequeue")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// jobsCollector reports ordo_jobs from the database at each scrape.
type jobsCollector struct{ s *Service }

var jobsDesc = prometheus.NewDesc("ordo_jobs",
	"Jobs that can still run, by tenant and state (pending, scheduled, running), counted in the database at scrape time; "+
		"each job once, whichever sides hold it.", []string{"tenant", "state"}, nil)

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	counts, err := c.s.q.Backend().CountByStatus(ctx, driver.CountParams{Statuses: countedStates})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	byTenant := map[string]map[queue.Status]int64{}
	var tenants []string
	for _, sc := range counts {
		if byTenant[sc.TenantID] == nil {
			byTenant[sc.TenantID] = map[queue.Status]int64{}
			tenants = append(tenants, sc.TenantID)
		}
		byTenant[sc.TenantID][sc.Status] += sc.Count
	}
	// Every counted state of a tenant that has any, so that a state
	// dropping to zero reads 0 rather than vanishing.
	for _, t := range tenants {
		for _, st := range countedStates {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(byTenant[t][st]), t, string(st))
		}
	}
}
