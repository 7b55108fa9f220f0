package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report collects every system-run's result.
type report struct {
	results map[string]map[string][]result // scenario, system
}

func newReport() *report { return &report{results: map[string]map[string][]result{}} }

func (r *report) add(scenario, sys string, res result) {
	if r.results[scenario] == nil {
		r.results[scenario] = map[string][]result{}
	}
	r.results[scenario][sys] = append(r.results[scenario][sys], res)
}

// med is the median over the runs of scenario on sys of f (NaN if none).
func (r *report) med(scenario, sys string, f func(result) float64) float64 {
	var xs []float64
	for _, res := range r.results[scenario][sys] {
		xs = append(xs, f(res))
	}
	return median(xs)
}

// extra returns the median, over scenario's runs of a system, of one of
// the measurements the scenario keeps in result.Extra.
func (r *report) extra(scenario string) func(sys, k string) float64 {
	return func(sys, k string) float64 {
		return r.med(scenario, sys, func(res result) float64 { return res.Extra[k] })
	}
}

// table starts a table printed to stdout, with its header row (columns
// separated and ended by tabs).
func table(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func (r *report) has(scenario string) bool { return len(r.results[scenario]) > 0 }

func printHeader(c config, server serverDesc) {
	host, _ := os.Hostname()
	fmt.Printf("ordo vs River benchmark, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s, %d CPUs (%s), %s RAM, %s/%s, %s; host %s\n",
		cpuModel(), runtime.NumCPU(), "as seen by Go", memTotal(), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	fmt.Printf("server: PostgreSQL %s at %s", server.version, redact(c.url))
	if c.params.Postmaster > 0 {
		fmt.Printf(" (local, postmaster pid %d: server CPU measured)\n", c.params.Postmaster)
	} else {
		fmt.Printf(" (not local: server CPU not measured)\n")
	}
	fmt.Printf("profile: %s (read from the server: fsync=%s, synchronous_commit=%s, full_page_writes=%s)",
		server.profile(), server.fsync, server.synchronousCommit, server.fullPageWrites)
	if fs := fsType(server.dataDir); fs != "" {
		fmt.Printf(", data directory on %s", fs)
		if fs == "tmpfs" {
			fmt.Printf(" (memory: fsync costs nothing there)")
		}
	}
	fmt.Println()
	if tree := ordoTree(); tree != "" {
		fmt.Printf("ordo: %s\n", tree)
	}
	names := make([]string, len(c.scenarios))
	for i, s := range c.scenarios {
		names[i] = s.name
	}
	fmt.Printf("runs %d (alternating River, ordo), scale %g, pgx pool_max_conns %d for both, scenarios %s\n\n",
		c.runs, c.params.Scale, c.poolMax, strings.Join(names, ","))
}

func printRun(sc scenario, sys string, run int, r result) {
	fmt.Printf("%-22s %-5s run %d: %s, %.2f s, cpu %.2f s bench + %s server, peak RSS %.1f MB",
		sc.name, sys, run, runFigure(sc, r), r.Seconds, r.ProcCPU, fmtServer(r.ServerCPU), r.PeakRSSMB)
	if sc.name == "hlc_vs_legacy_dequeue" {
		for _, b := range dequeueBatches {
			fmt.Printf(", batch %d p50 legacy %.3f ms hlc %.3f ms", b, r.Extra[fmt.Sprintf("legacy_%d_p50_ms", b)], r.Extra[fmt.Sprintf("hlc_%d_p50_ms", b)])
		}
	}
	fmt.Println()
	for _, n := range r.Notes {
		fmt.Printf("    note: %s\n", n)
	}
}

func runFigure(sc scenario, r result) string {
	switch sc.name {
	case "latency":
		return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d jobs (enqueued at %.0f jobs/s)",
			r.P50Ms, r.P99Ms, r.Extra["max_ms"], int(r.Extra["measured"]), r.Throughput)
	case "hlc_vs_legacy_dequeue":
		return fmt.Sprintf("%d jobs leased", r.Jobs)
	case "wal_per_job":
		var parts []string
		for _, ph := range walPhases {
			parts = append(parts, fmt.Sprintf("%s %.0f B WAL, %.1f FPI, %.1f..%.1f index entries", ph,
				r.Extra[ph+"_wal_b"], r.Extra[ph+"_fpi"], r.Extra[ph+"_idx_min"], r.Extra[ph+"_idx_max"]))
		}
		return "per job: " + strings.Join(parts, "; ")
	case "dequeue_depth":
		var parts []string
		for i := range dequeueDepths {
			l := depthLabel(i)
			parts = append(parts, fmt.Sprintf("%.0f queued p50 %.3f ms p99 %.3f ms", r.Extra[l+"_jobs"], r.Extra[l+"_p50_ms"], r.Extra[l+"_p99_ms"]))
		}
		return fmt.Sprintf("%d jobs fetched; ", r.Jobs) + strings.Join(parts, "; ")
	case "steady_state":
		return fmt.Sprintf("%d jobs, %.0f jobs/s, produced in %.1f s (backlog then %.0f); job state %.1f MB at warm-up end, %.1f MB most after (%+.1f%%), %.1f MB at the end; log %.1f -> %.1f MB",
			r.Jobs, r.Throughput, r.Extra["produced_s"], r.Extra["backlog"], r.Extra["state_warm_mb"], r.Extra["state_max_mb"],
			r.Extra["growth_pct"], r.Extra["state_end_mb"], r.Extra["log_warm_mb"], r.Extra["log_end_mb"])
	case "held_horizon":
		var parts []string
		for w := range heldWindows {
			parts = append(parts, fmt.Sprintf("%.0f/s p99 %.2f ms", r.Extra[fmt.Sprintf("w%d_rate", w)], r.Extra[fmt.Sprintf("w%d_p99_ms", w)]))
		}
		return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d jobs (enqueued at %.0f jobs/s, started at %.0f jobs/s); windows: %s; horizon held %.1f s",
			r.P50Ms, r.P99Ms, r.Extra["max_ms"], r.Jobs, r.Extra["enqueue_rate"], r.Throughput, strings.Join(parts, ", "), r.Extra["held_s"])
	}
	return fmt.Sprintf("%d jobs, %.0f jobs/s", r.Jobs, r.Throughput)
}

func fmtServer(s float64) string {
	if s < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f s", s)
}

// cpuPer10k is the median CPU per 10,000 jobs, "bench+server" seconds.
func (r *report) cpuPer10k(scenario, sys string) string {
	proc := r.med(scenario, sys, func(x result) float64 { return x.ProcCPU / float64(x.Jobs) * 10_000 })
	server := r.med(scenario, sys, func(x result) float64 {
		if x.ServerCPU < 0 {
			return math.NaN()
		}
		return x.ServerCPU / float64(x.Jobs) * 10_000
	})
	if math.IsNaN(proc) {
		return "-"
	}
	if math.IsNaN(server) {
		return fmt.Sprintf("%.2f + n/a", proc)
	}
	return fmt.Sprintf("%.2f + %.2f", proc, server)
}

func num(x float64, prec int) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

func throughput(x result) float64 { return x.Throughput }
func p50(x result) float64        { return x.P50Ms }
func p99(x result) float64        { return x.P99Ms }
func peakRSS(x result) float64    { return x.PeakRSSMB }

// target is one goal of the issue.
type target struct {
	name  string
	ratio float64
	op    string // ">=", "<=" or "<"
	goal  float64
}

func (t target) line() string {
	pass := false
	switch t.op {
	case ">=":
		pass = t.ratio >= t.goal
	case "<=":
		pass = t.ratio <= t.goal
	case "<":
		pass = t.ratio < t.goal
	}
	verdict := "FAIL"
	if pass {
		verdict = "PASS"
	}
	goal := fmt.Sprintf("%s %.1f", t.op, t.goal)
	if t.op == "<" {
		goal = fmt.Sprintf("<%g", t.goal)
	}
	return fmt.Sprintf("target %s: ratio %.3f (goal %s) %s", t.name, t.ratio, goal, verdict)
}

// mainTable are the scenarios of the report's first table.
var mainTable = []string{"bulk_enqueue", "single_enqueue_32", "work_100", "work_1000", "latency",
	"sqlite_bulk_enqueue", "sqlite_single_enqueue_32", "sqlite_work_100"}

func (r *report) print(c config) {
	fmt.Printf("\n== Results: medians of %d runs per system (throughput in jobs/s, latency in ms; CPU in seconds per 10,000 jobs: bench process + PostgreSQL server) ==\n\n", c.runs)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	if slices.ContainsFunc(mainTable, r.has) {
		fmt.Fprintln(tw, "scenario\tunit\tRiver\tordo\tordo/River\tRiver CPU s/10k\tordo CPU s/10k\t")
	}
	var targets []target
	row := func(label, scenario, unit string, f func(result) float64, prec int) float64 {
		rv, ov := r.med(scenario, systemRiver, f), r.med(scenario, systemOrdo, f)
		ratio := ov / rv
		rc, oc := r.cpuPer10k(scenario, systemRiver), r.cpuPer10k(scenario, systemOrdo)
		if unit == "MB" {
			rc, oc = "", ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label, unit, num(rv, prec), num(ov, prec), num(ratio, 3), rc, oc)
		return ratio
	}
	// The SQLite scenarios have their PostgreSQL twins' goals.
	goals := map[string]float64{"bulk_enqueue": 1.0, "single_enqueue_32": 3.0, "work_100": 1.5, "work_1000": 1.0,
		"sqlite_bulk_enqueue": 1.0, "sqlite_single_enqueue_32": 3.0, "sqlite_work_100": 1.5}
	for _, name := range []string{"bulk_enqueue", "single_enqueue_32", "work_100", "work_1000",
		"sqlite_bulk_enqueue", "sqlite_single_enqueue_32", "sqlite_work_100"} {
		if r.has(name) {
			ratio := row(name, name, "jobs/s", throughput, 0)
			targets = append(targets, target{name, ratio, ">=", goals[name]})
		}
	}
	if r.has("latency") {
		row("latency enqueue rate", "latency", "jobs/s", throughput, 0)
		row("latency p50", "latency", "ms", p50, 2)
		ratio := row("latency p99", "latency", "ms", p99, 2)
		targets = append(targets, target{"latency_p99", ratio, "<=", 1.0})
	}
	var mem *target
	for _, name := range []string{"work_100", "work_1000"} {
		if r.has(name) {
			row(name+" peak RSS", name, "MB", peakRSS, 1)
		}
	}
	if r.has("work_100") {
		// The largest of ordo's runs, not the median: a memory bound
		// must hold on every run.
		var peak []float64
		for _, x := range r.results["work_100"][systemOrdo] {
			peak = append(peak, x.PeakRSSMB)
		}
		if len(peak) > 0 {
			mem = &target{"memory_work_100_mb", slices.Max(peak), "<", 100}
		}
	}
	tw.Flush()

	if r.has("hlc_vs_legacy_dequeue") {
		fmt.Printf("\nhlc_vs_legacy_dequeue (ordo only): p50 of q.Dequeue latency, ms, median of %d runs\n\n", c.runs)
		tw = table("batch\tlegacy reads\tHLC reads\tHLC/legacy\tlegacy p99\tHLC p99\t")
		x := r.extra("hlc_vs_legacy_dequeue")
		extra := func(k string) float64 { return x(systemOrdo, k) }
		for _, b := range dequeueBatches {
			l, h := extra(fmt.Sprintf("legacy_%d_p50_ms", b)), extra(fmt.Sprintf("hlc_%d_p50_ms", b))
			fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", b, l, h, h/l,
				extra(fmt.Sprintf("legacy_%d_p99_ms", b)), extra(fmt.Sprintf("hlc_%d_p99_ms", b)))
			targets = append(targets, target{fmt.Sprintf("hlc_vs_legacy_dequeue_%d", b), h / l, "<=", 1.1})
		}
		tw.Flush()
		fmt.Printf("CPU s/10k leased jobs (bench + server): %s\n", r.cpuPer10k("hlc_vs_legacy_dequeue", systemOrdo))
	}

	if r.has("wal_per_job") {
		targets = append(targets, r.printWAL(c))
	}
	if r.has("dequeue_depth") {
		r.printDepth(c)
	}
	if r.has("held_horizon") {
		targets = append(targets, r.printHeld(c))
	}
	if r.has("steady_state") {
		r.printSteady(c)
	}

	fmt.Printf("\n== Settings ==\n\n")
	for _, sc := range c.scenarios {
		for _, sys := range sc.systems {
			if rs := r.results[sc.name][sys]; len(rs) > 0 {
				fmt.Printf("%s, %s: %s\n", sc.name, sys, rs[0].Settings)
			}
		}
	}
	fmt.Println()
	if mem != nil {
		targets = append(targets, *mem)
	}
	for _, t := range targets {
		fmt.Println(t.line())
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb); err == nil {
				return fmt.Sprintf("%.1f GB", kb/1024/1024)
			}
		}
	}
	return "unknown"
}

// ordoTree describes the ordo source the bench is built from (the parent
// directory, by the replace directive in go.mod): its commit and the files
// changed since, outside bench/. Empty when git cannot tell.
func ordoTree() string {
	head, err := exec.Command("git", "-C", "..", "log", "-1", "--format=%h %cd", "--date=iso").Output()
	if err != nil {
		return ""
	}
	desc := "commit " + strings.TrimSpace(string(head))
	status, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", ".", ":!bench", ":!docs").Output()
	if err == nil {
		var changed []string
		for _, line := range strings.Split(strings.TrimRight(string(status), "\n"), "\n") {
			if len(line) > 3 && strings.HasSuffix(line, ".go") {
				changed = append(changed, line[3:])
			}
		}
		if len(changed) > 0 {
			desc += fmt.Sprintf(", plus uncommitted changes to %s", strings.Join(changed, " "))
		}
	}
	return desc
}

// printWAL prints wal_per_job's table and returns its target: WAL per job
// enqueued one per call and worked, ordo/River.
func (r *report) printWAL(c config) target {
	fmt.Printf("\nwal_per_job: per job, medians of %d runs. WAL: pg_wal_lsn_diff over the phase; FPI: full-page images (pg_stat_wal, the whole cluster); index entries: rows inserted + non-HOT updates times their table's indexes (pg_stat_user_tables), lower bound without partial indexes .. upper bound counting them as full; index bytes: growth of the indexes' size; rows: inserted / non-HOT updated / HOT updated\n\n", c.runs)
	tw := table("phase\tRiver WAL B\tordo WAL B\tordo/River\tRiver FPI\tordo FPI\tRiver index entries\tordo index entries\tRiver index B\tordo index B\tRiver rows\tordo rows\t")
	x := r.extra("wal_per_job")
	for _, ph := range walPhases {
		rw, ow := x(systemRiver, ph+"_wal_b"), x(systemOrdo, ph+"_wal_b")
		entries := func(sys string) string {
			return fmt.Sprintf("%.2f..%.2f", x(sys, ph+"_idx_min"), x(sys, ph+"_idx_max"))
		}
		rows := func(sys string) string {
			return fmt.Sprintf("%.2f/%.2f/%.2f", x(sys, ph+"_rows_ins"), x(sys, ph+"_rows_upd"), x(sys, ph+"_rows_hot"))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%.2f\t%.2f\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t\n", ph, rw, ow, num(ow/rw, 3),
			x(systemRiver, ph+"_fpi"), x(systemOrdo, ph+"_fpi"), entries(systemRiver), entries(systemOrdo),
			x(systemRiver, ph+"_idx_bytes"), x(systemOrdo, ph+"_idx_bytes"), rows(systemRiver), rows(systemOrdo))
	}
	life := func(sys string) float64 {
		return r.med("wal_per_job", sys, func(res result) float64 { return res.Extra["single_wal_b"] + res.Extra["work_wal_b"] })
	}
	rl, ol := life(systemRiver), life(systemOrdo)
	fmt.Fprintf(tw, "single+work\t%.0f\t%.0f\t%s\t\t\t\t\t\t\t\t\t\n", rl, ol, num(ol/rl, 3))
	tw.Flush()
	fmt.Println("target wal_per_job: single+work (a job enqueued one per call, then worked), ordo/River")
	return target{"wal_per_job", ol / rl, "<=", 1.5}
}

// printDepth prints dequeue_depth's table (no target).
func (r *report) printDepth(c config) {
	fmt.Printf("\ndequeue_depth: one fetch of %d jobs (ordo Queue.Dequeue, River JobGetAvailable), ms, medians of %d runs\n\n", depthBatch, c.runs)
	tw := table("jobs queued\tRiver p50\tordo p50\tordo/River\tRiver p99\tordo p99\t")
	x := r.extra("dequeue_depth")
	for i := range dequeueDepths {
		l := depthLabel(i)
		jobs := x(systemOrdo, l+"_jobs")
		if math.IsNaN(jobs) {
			jobs = x(systemRiver, l+"_jobs")
		}
		rp, op := x(systemRiver, l+"_p50_ms"), x(systemOrdo, l+"_p50_ms")
		fmt.Fprintf(tw, "%.0f\t%s\t%s\t%s\t%s\t%s\t\n", jobs, num(rp, 3), num(op, 3), num(op/rp, 3),
			num(x(systemRiver, l+"_p99_ms"), 3), num(x(systemOrdo, l+"_p99_ms"), 3))
	}
	tw.Flush()
	fmt.Printf("CPU s/10k fetched jobs (bench + server): River %s, ordo %s\n", r.cpuPer10k("dequeue_depth", systemRiver), r.cpuPer10k("dequeue_depth", systemOrdo))
}

// printSteady prints steady_state's table: throughput, and whether the
// job tables stay flat once retention deletes as fast as jobs arrive. No
// target: the issue asks for the sizes to be reported.
func (r *report) printSteady(c config) {
	fmt.Printf("\nsteady_state: %d jobs/s produced, 100 workers, retention %v (at scale 1); sizes with indexes, MB, medians of %d runs\n\n", steadyRate, steadyRetention, c.runs)
	tw := table("system\tjobs/s\tstate at warm-up end\tstate max after\tgrowth after warm-up %\tstate at end\tlog at end\t")
	x := r.extra("steady_state")
	for _, sys := range []string{systemRiver, systemOrdo} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", sys, num(r.med("steady_state", sys, throughput), 0),
			num(x(sys, "state_warm_mb"), 1), num(x(sys, "state_max_mb"), 1), num(x(sys, "growth_pct"), 1),
			num(x(sys, "state_end_mb"), 1), num(x(sys, "log_end_mb"), 1))
	}
	tw.Flush()
	fmt.Printf("CPU s/10k jobs (bench + server): River %s, ordo %s\n", r.cpuPer10k("steady_state", systemRiver), r.cpuPer10k("steady_state", systemOrdo))
}

// printHeld prints held_horizon's table and returns its target: ordo p99 /
// River p99 over the whole measured production.
func (r *report) printHeld(c config) target {
	fmt.Printf("\nheld_horizon: %d jobs/s with a REPEATABLE READ transaction held open; per window of enqueue time: handler starts per second (by start time) and enqueue-to-start p50 / p99 in ms, medians of %d runs\n\n", heldRate, c.runs)
	tw := table("window\tRiver jobs/s\tordo jobs/s\tRiver p50\tordo p50\tRiver p99\tordo p99\tordo/River p99\t")
	x := r.extra("held_horizon")
	for w := range heldWindows {
		k := fmt.Sprintf("w%d_", w)
		rp, op := x(systemRiver, k+"p99_ms"), x(systemOrdo, k+"p99_ms")
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", w+1, num(x(systemRiver, k+"rate"), 0), num(x(systemOrdo, k+"rate"), 0),
			num(x(systemRiver, k+"p50_ms"), 2), num(x(systemOrdo, k+"p50_ms"), 2), num(rp, 2), num(op, 2), num(op/rp, 3))
	}
	rt, ot := r.med("held_horizon", systemRiver, throughput), r.med("held_horizon", systemOrdo, throughput)
	rp, op := r.med("held_horizon", systemRiver, p99), r.med("held_horizon", systemOrdo, p99)
	fmt.Fprintf(tw, "all\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", num(rt, 0), num(ot, 0),
		num(r.med("held_horizon", systemRiver, p50), 2), num(r.med("held_horizon", systemOrdo, p50), 2), num(rp, 2), num(op, 2), num(op/rp, 3))
	tw.Flush()
	fmt.Printf("enqueue rate achieved, jobs/s: River %s, ordo %s\n", num(x(systemRiver, "enqueue_rate"), 0), num(x(systemOrdo, "enqueue_rate"), 0))
	fmt.Printf("CPU s/10k jobs (bench + server): River %s, ordo %s\n", r.cpuPer10k("held_horizon", systemRiver), r.cpuPer10k("held_horizon", systemOrdo))
	return target{"held_horizon_p99", op / rp, "<=", 1.0}
}
