package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// params are what every scenario run needs, in the parent and the child.
type params struct {
	Scale      float64 `json:"scale"`
	Postmaster int     `json:"postmaster"` // 0: server CPU not measured
	Tuning     tuning  `json:"tuning"`
}

// tuning are the client settings of the worker scenarios: FetchCooldown
// per scenario and system (key "work_100/river"), and the poll interval.
type tuning struct {
	Cooldown     map[string]time.Duration `json:"cooldown"`
	PollInterval time.Duration            `json:"poll_interval"`
}

// workerScenarios are the scenarios that run a client.
var workerScenarios = []string{"work_100", "work_1000", "latency", "held_horizon"}

// defaultCooldown is each system's best FetchCooldown found on the 2-core
// development machine (docs/performance.md, "Tuning").
var defaultCooldown = map[string]time.Duration{
	"work_100/river": time.Millisecond, "work_100/ordo": time.Millisecond,
	"work_1000/river": 10 * time.Millisecond, "work_1000/ordo": 10 * time.Millisecond,
	"latency/river": time.Millisecond, "latency/ordo": time.Millisecond,
	// As latency, not swept separately.
	"held_horizon/river": time.Millisecond, "held_horizon/ordo": time.Millisecond,
}

func (t tuning) config(scenario, sys string, maxWorkers int) workConfig {
	return workConfig{MaxWorkers: maxWorkers, FetchCooldown: t.Cooldown[scenario+"/"+sys], PollInterval: t.PollInterval}
}

// result is one system-run of one scenario, measured in a child process.
type result struct {
	Jobs       int     `json:"jobs"`
	Seconds    float64 `json:"seconds"`    // the timed window
	Throughput float64 `json:"throughput"` // jobs/s over the window
	P50Ms      float64 `json:"p50_ms,omitempty"`
	P99Ms      float64 `json:"p99_ms,omitempty"`
	ProcCPU    float64 `json:"proc_cpu"`   // bench process CPU seconds in the window
	ServerCPU  float64 `json:"server_cpu"` // PostgreSQL server CPU seconds in the window; -1 unknown
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Settings   string  `json:"settings,omitempty"`
	// Extra holds scenario-specific figures (the dequeue scenario's p50s).
	Extra map[string]float64 `json:"extra,omitempty"`
	// Notes are anomalies seen (client errors, lost events), printed
	// with the run.
	Notes []string `json:"notes,omitempty"`
}

// errorLog collects a client's error messages.
type errorLog struct {
	mu    sync.Mutex
	n     int
	first []string // the first message
}

func (l *errorLog) add(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < 1 {
		l.first = append(l.first, msg)
	}
}

func (l *errorLog) notes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the client logged %d errors; the first: %s", l.n, l.first[0])}
}

// scenario is one benchmark. prepare runs in the parent on the fresh
// database of a system-run (untimed); measure runs in a child process.
type scenario struct {
	name    string
	unit    string
	systems []string
	prepare func(ctx context.Context, p params, sys, url string) error
	measure func(ctx context.Context, p params, sys, url string) (result, error)
	// sqlite: each system-run gets a fresh SQLite file in a temporary
	// directory (url sqlite:PATH) instead of a PostgreSQL database.
	sqlite bool
}

var bothSystems = []string{systemRiver, systemOrdo}

var scenarios = []scenario{
	{name: "bulk_enqueue", unit: "jobs/s", systems: bothSystems, measure: measureBulkEnqueue},
	{name: "single_enqueue_32", unit: "jobs/s", systems: bothSystems, measure: measureSingleEnqueue},
	{name: "work_100", unit: "jobs/s", systems: bothSystems, prepare: prepareWork, measure: measureWork("work_100", 100)},
	{name: "work_1000", unit: "jobs/s", systems: bothSystems, prepare: prepareWork, measure: measureWork("work_1000", 1000)},
	{name: "latency", unit: "ms", systems: bothSystems, measure: measureLatency},
	{name: "hlc_vs_legacy_dequeue", unit: "ms", systems: []string{systemOrdo}, prepare: prepareDequeue, measure: measureDequeue},
	{name: "wal_per_job", unit: "B/job", systems: bothSystems, measure: measureWAL},
	{name: "dequeue_depth", unit: "ms", systems: bothSystems, measure: measureDequeueDepth},
	{name: "held_horizon", unit: "ms", systems: bothSystems, measure: measureHeldHorizon},
	{name: "steady_state", unit: "jobs/s", systems: bothSystems, measure: measureSteady},
	// The PostgreSQL scenarios' shapes on SQLite files: River's riversqlite
	// driver beside ordo's SQLite backend, both on modernc.org/sqlite.
	// sqlite_work_100 uses work_100's tuning (-*-cooldown-work_100).
	{name: "sqlite_bulk_enqueue", unit: "jobs/s", systems: bothSystems, measure: measureBulkEnqueue, sqlite: true},
	{name: "sqlite_single_enqueue_32", unit: "jobs/s", systems: bothSystems, measure: measureSingleEnqueue, sqlite: true},
	{name: "sqlite_work_100", unit: "jobs/s", systems: bothSystems, prepare: prepareWork, measure: measureWork("work_100", 100), sqlite: true},
}

func findScenario(name string) (scenario, bool) {
	for _, s := range scenarios {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}

// window measures the wall time and CPU of fn into r.
func window(p params, r *result, fn func() error) error {
	before := sampleCPU(p.Postmaster)
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	after := sampleCPU(p.Postmaster)
	r.Seconds = elapsed.Seconds()
	r.ProcCPU, r.ServerCPU = cpuDelta(before, after)
	if r.Jobs > 0 && r.Throughput == 0 {
		r.Throughput = float64(r.Jobs) / r.Seconds
	}
	return err
}

// insertAll inserts jobs seq first..first+n-1 in batches with the
// system's bulk path.
func insertAll(ctx context.Context, s system, first, n, batch int) error {
	buf := make([]benchArgs, 0, batch)
	for i := range n {
		buf = append(buf, benchArgs{Seq: int64(first + i)})
		if len(buf) == batch || i == n-1 {
			if err := s.insertBatch(ctx, buf); err != nil {
				return fmt.Errorf("inserting jobs %d..%d: %w", first+i+1-len(buf), first+i, err)
			}
			buf = buf[:0]
		}
	}
	return nil
}

// warmupSeq numbers the untimed warm-up jobs, apart from the timed ones.
const warmupSeq = 1 << 40
