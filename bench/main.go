// Command bench compares ordo with River (github.com/riverqueue/river) on
// one PostgreSQL server, side by side (GitHub issue 7): bulk and single
// enqueue throughput, throughput working 100,000 no-op jobs with 100 and
// 1,000 workers, enqueue-to-start latency under a steady 1,000 jobs/s,
// WAL and index entries per job, fetch latency at 10k, 100k and 1M queued
// jobs, latency with the xmin horizon held by a long transaction, and
// (ordo only) the latency of HLC against legacy dequeues. The header
// prints the server's fsync, synchronous_commit and full_page_writes.
// The sqlite_* scenarios run bulk enqueue, single enqueue and work_100 on a
// fresh SQLite file per system-run instead (River's riversqlite driver,
// ordo's SQLite backend).
//
// Every system-run gets a fresh database (CREATE DATABASE on the server
// of ORDO_BENCH_DATABASE_URL, else ORDO_TEST_DATABASE_URL), VACUUM ANALYZE
// after any untimed fill, and its own child process (the binary re-executes
// itself), so process CPU and peak RSS belong to one system. Runs
// alternate: River run 1, ordo run 1, River run 2, ... and the report
// gives medians, then one "target NAME: ratio R (goal G) PASS|FAIL" line
// per goal of the issue.
//
//	cd bench && go run . -runs 3
//	cd bench && go run . -scale 0.05 -runs 1 -scenarios bulk_enqueue,latency
//
// It is a separate module so that River never enters ordo's own go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == childFlag {
		os.Exit(childMain(os.Args[2]))
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	url       string
	runs      int
	scenarios []scenario
	poolMax   int
	timeout   time.Duration
	profile   string
	// statements is how many of each run's top statements to print
	// (pg_stat_statements; 0: none).
	statements int
	// durability is the profile the server must have ("durable" or
	// "fast"; "" checks nothing).
	durability string
	params     params
}

func parseFlags() (config, error) {
	var c config
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	var list string
	flag.IntVar(&c.runs, "runs", 3, "runs per system and scenario (alternating River, ordo); the report gives medians")
	flag.StringVar(&list, "scenarios", strings.Join(names, ","), "comma-separated scenarios to run")
	flag.Float64Var(&c.params.Scale, "scale", 1.0, "multiplier of every job count and of the latency duration (0.05 for a quick check)")
	flag.IntVar(&c.poolMax, "pool", 32, "pgx pool size (pool_max_conns) of both systems")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "limit of one system-run")
	flag.StringVar(&c.profile, "cpuprofile", "", "write a CPU profile of every measurement (bench process) into this directory")
	flag.IntVar(&c.statements, "statements", 0, "print each PostgreSQL system-run's N statements with the most server time (pg_stat_statements, reset before the measurement)")
	flag.StringVar(&c.durability, "durability", "", "fail unless the server's fsync, synchronous_commit and full_page_writes make this profile: durable (fsync and full_page_writes on, synchronous_commit not off) or fast (all three off); empty: run on whatever the server has (it is printed either way)")
	c.params.Tuning.Cooldown = map[string]time.Duration{}
	cooldowns := map[string]*time.Duration{}
	for _, sc := range workerScenarios {
		for _, sys := range bothSystems {
			key := sc + "/" + sys
			d := new(time.Duration)
			cooldowns[key] = d
			flag.DurationVar(d, fmt.Sprintf("%s-cooldown-%s", sys, sc), defaultCooldown[key], fmt.Sprintf("%s FetchCooldown in %s", sys, sc))
		}
	}
	flag.DurationVar(&c.params.Tuning.PollInterval, "poll", time.Second, "FetchPollInterval (River) and PollInterval (ordo)")
	flag.Parse()
	for k, d := range cooldowns {
		c.params.Tuning.Cooldown[k] = *d
	}
	if flag.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if c.runs < 1 || c.params.Scale <= 0 || c.poolMax < 1 {
		return c, fmt.Errorf("-runs, -scale and -pool must be positive")
	}
	switch c.durability {
	case "", "durable", "fast":
	default:
		return c, fmt.Errorf("-durability must be durable, fast or empty, not %q", c.durability)
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		s, ok := findScenario(name)
		if !ok {
			return c, fmt.Errorf("unknown scenario %q; known: %s", name, strings.Join(names, ", "))
		}
		c.scenarios = append(c.scenarios, s)
	}
	c.url = os.Getenv("ORDO_BENCH_DATABASE_URL")
	if c.url == "" {
		c.url = os.Getenv("ORDO_TEST_DATABASE_URL")
	}
	if c.url == "" {
		return c, fmt.Errorf("set ORDO_BENCH_DATABASE_URL or ORDO_TEST_DATABASE_URL (make bench starts a throwaway server)")
	}
	return c, nil
}

func run() error {
	c, err := parseFlags()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	server, err := serverInfo(ctx, c.url)
	if err != nil {
		return err
	}
	c.params.Postmaster = server.postmaster
	printHeader(c, server)
	if c.durability != "" && server.profile() != c.durability {
		return fmt.Errorf("the server is not %s: fsync=%s, synchronous_commit=%s, full_page_writes=%s (is ORDO_BENCH_DATABASE_URL or ORDO_TEST_DATABASE_URL set to another server?)",
			c.durability, server.fsync, server.synchronousCommit, server.fullPageWrites)
	}

	rep := newReport()
	for _, sc := range c.scenarios {
		for run := 1; run <= c.runs; run++ {
			for _, sys := range sc.systems {
				r, err := runOne(ctx, c, sc, sys, run)
				if err != nil {
					return fmt.Errorf("%s, %s run %d: %w", sc.name, sys, run, err)
				}
				printRun(sc, sys, run, r)
				rep.add(sc.name, sys, r)
			}
		}
	}
	rep.print(c)
	return nil
}

// runOne is one system-run: a fresh database, the system's schema, the
// scenario's untimed fill, VACUUM ANALYZE, then the measurement in a
// child process; the database is dropped afterwards.
func runOne(ctx context.Context, c config, sc scenario, sys string, run int) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if sc.sqlite {
		return runOneSQLite(ctx, c, sc, sys, run)
	}
	name := fmt.Sprintf("ordo_bench_%s_%s_%d", sc.name, sys, run)
	if err := createDatabase(ctx, c.url, name); err != nil {
		return result{}, err
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := dropDatabase(dctx, c.url, name); err != nil {
			fmt.Fprintln(os.Stderr, "bench: dropping", name+":", err)
		}
	}()
	url, err := dbURL(c.url, name, c.poolMax)
	if err != nil {
		return result{}, err
	}
	if err := prepareSystem(ctx, sys, url); err != nil {
		return result{}, fmt.Errorf("creating the schema: %w", err)
	}
	if sc.prepare != nil {
		if err := sc.prepare(ctx, c.params, sys, url); err != nil {
			return result{}, fmt.Errorf("filling the queue: %w", err)
		}
	}
	if err := vacuumAnalyze(ctx, url); err != nil {
		return result{}, err
	}
	spec := childSpec{Scenario: sc.name, System: sys, URL: url, Params: c.params}
	if c.profile != "" {
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return result{}, err
		}
		spec.Profile = filepath.Join(c.profile, name+".pprof")
	}
	if c.statements > 0 {
		if err := resetStatements(ctx, url); err != nil {
			return result{}, err
		}
	}
	r, err := runChild(ctx, spec)
	if err == nil && c.statements > 0 {
		err = printStatements(ctx, os.Stdout, url, fmt.Sprintf("%s %s run %d", sc.name, sys, run), c.statements)
	}
	return r, err
}

// runOneSQLite is one system-run of a SQLite scenario: a fresh file in a
// temporary directory, the system's schema, the scenario's untimed fill,
// then the measurement in a child process; the directory is removed
// afterwards. No server: server CPU is not measured (n/a).
func runOneSQLite(ctx context.Context, c config, sc scenario, sys string, run int) (result, error) {
	url, remove, err := newSQLiteFile()
	if err != nil {
		return result{}, err
	}
	defer remove()
	if err := prepareSystem(ctx, sys, url); err != nil {
		return result{}, fmt.Errorf("creating the schema: %w", err)
	}
	if sc.prepare != nil {
		if err := sc.prepare(ctx, c.params, sys, url); err != nil {
			return result{}, fmt.Errorf("filling the queue: %w", err)
		}
	}
	p := c.params
	p.Postmaster = 0
	spec := childSpec{Scenario: sc.name, System: sys, URL: url, Params: p}
	if c.profile != "" {
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return result{}, err
		}
		spec.Profile = filepath.Join(c.profile, fmt.Sprintf("ordo_bench_%s_%s_%d.pprof", sc.name, sys, run))
	}
	return runChild(ctx, spec)
}
