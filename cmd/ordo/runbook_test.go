package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/ordo-sched/ordo/internal/servicetest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/internal/testsignal"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/service"
)

// The migration guide's runbook, walked end to end against real `ordo
// serve` processes whose configuration files are changed while producers
// keep enqueuing through their APIs.

func TestRunbookPostgres(t *testing.T) {
	walkRunbook(t, testdb.NewDatabase(t), []string{"runbook-a", "runbook-b"})
}

func TestRunbookSQLite(t *testing.T) {
	walkRunbook(t, "sqlite:"+filepath.Join(t.TempDir(), "ordo.db"), []string{"runbook-solo"})
}

// buildOrdo builds the ordo binary once per test into a temporary directory.
func buildOrdo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ordo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type runbookNode struct {
	id      string
	cfgPath string
	cmd     *exec.Cmd
	stdout  syncBuffer
	stderr  syncBuffer
	exited  chan error
	base    string
}

func runbookConfig(enable, dual bool, node, db, tokenHash string) string {
	return fmt.Sprintf(`Scheduler:
  Queue:
    Hlc:
      EnableHlcOrdering: %t
      DualWriteMode: %t
Ordo:
  NodeId: %s
  Database:
    Url: %q
  Http:
    Listen: 127.0.0.1:0
    ShutdownTimeout: 10s
  Auth:
    Tokens:
      - Name: runbook
        Admin: true
        Sha256: %s
  Worker:
    Enabled: true
    MaxWorkers: 4
    PollInterval: 20ms
    LeaseFor: 30s
  Reload:
    PollInterval: 50ms
  Log:
    Level: debug  # the test waits for the lines about reloads and about each job run
`, enable, dual, node, db, tokenHash)
}

func modeOf(enable, dual bool) string {
	return queue.Options{EnableHlcOrdering: enable, DualWriteMode: dual}.Mode().String()
}

// Lines the nodes log (text handler) that the test waits for.
var (
	// reloadRE: a reload's outcome, with the mode in force after it.
	reloadRE = regexp.MustCompile(`msg="(configuration reloaded|configuration reload failed|configuration not reloaded[^"]*)"(?:.* mode=(\S+))?`)
	// jobFinishedRE: a job run by a node's worker, and how it ended.
	jobFinishedRE = regexp.MustCompile(`msg="worker: job finished" job_id=(\S+) .* outcome=(\S+)`)
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func scrape(base string) (string, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b), err
}

// metricSum sums every sample of the metric name whose labels contain
// all of labels (e.g. `event="job_succeeded"`).
func metricSum(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

type enqueued struct {
	id   string
	node string
	mode string
}

func walkRunbook(t *testing.T, dbURL string, nodeIDs []string) {
	start := time.Now()
	bin := buildOrdo(t)
	t.Logf("built ordo in %s", time.Since(start).Round(time.Millisecond))

	tokenBytes := make([]byte, 24)
	_, _ = rand.Read(tokenBytes)
	token := service.TokenPrefix + hex.EncodeToString(tokenBytes)
	tokenHash := service.HashToken(token)

	// Apply migrations once, before the nodes start together.
	if out, errOut, code := ordo(t, "migrate", "--db", dbURL); code != 0 {
		t.Fatalf("migrate: %d %s%s", code, out, errOut)
	}

	dir := t.TempDir()
	// Every line the nodes print, as they print it (the exec package
	// copies their pipes into the nodes' syncBuffers), and their exits.
	output := newOutput()
	var nodes []*runbookNode
	for _, id := range nodeIDs {
		n := &runbookNode{id: id, cfgPath: filepath.Join(dir, id+".yaml"), exited: make(chan error, 1)}
		n.stdout.lines, n.stdout.from = output, id+" stdout"
		n.stderr.lines, n.stderr.from = output, id+" stderr"
		servicetest.WriteAtomically(t, n.cfgPath, runbookConfig(false, true, id, dbURL, tokenHash))
		n.cmd = exec.Command(bin, "serve", "--config", n.cfgPath)
		n.cmd.Stdout = &n.stdout
		n.cmd.Stderr = &n.stderr
		// Keep the environment from changing the configuration.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "Scheduler__") && !strings.HasPrefix(kv, "Ordo__") &&
				!strings.HasPrefix(kv, "ORDO_CONFIG=") && !strings.HasPrefix(kv, "ORDO_DATABASE_URL=") {
				n.cmd.Env = append(n.cmd.Env, kv)
			}
		}
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := n.cmd.Wait()
			output.Record(printed{from: n.id, line: fmt.Sprint(err), exited: true})
			n.exited <- err
		}()
		nodes = append(nodes, n)
	}
	stopped := false
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, n := range nodes {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, n := range nodes {
			select {
			case err := <-n.exited:
				if err != nil {
					t.Errorf("node %s exited: %v\nstdout:\n%s\nstderr:\n%s", n.id, err, n.stdout.String(), n.stderr.String())
				} else if !strings.Contains(n.stdout.String(), "ordo: stopped") {
					t.Errorf("node %s did not print that it stopped:\n%s", n.id, n.stdout.String())
				}
			case <-time.After(testsignal.Timeout):
				_ = n.cmd.Process.Kill()
				<-n.exited
				t.Errorf("node %s did not stop within %v of SIGTERM:\n%s", n.id, testsignal.Timeout, n.stderr.String())
			}
		}
	}
	t.Cleanup(stopAll)

	urlRE := regexp.MustCompile(`ordo: serving (http://127\.0\.0\.1:\d+) \(node ([^,]+), mode ([a-z-]+)`)
	for _, n := range nodes {
		p := output.Await(t, n.id+" to print its URL", func(p printed) bool {
			return (p.exited && p.from == n.id) || (p.from == n.id+" stdout" && urlRE.MatchString(p.line))
		})
		if p.exited {
			t.Fatalf("node %s exited at start: %s\n%s%s", n.id, p.line, n.stdout.String(), n.stderr.String())
		}
		m := urlRE.FindStringSubmatch(p.line)
		if m[2] != n.id || m[3] != "dual-write" {
			t.Fatalf("node %s started as %q in mode %q", n.id, m[2], m[3])
		}
		n.base = m[1]
	}
	t.Logf("%d node(s) serving after %s", len(nodes), time.Since(start).Round(time.Millisecond))

	// checkMode checks that every node's metrics report mode.
	checkMode := func(mode string) {
		t.Helper()
		want := fmt.Sprintf(`ordo_queue_mode{mode=%q} 1`, mode)
		for _, n := range nodes {
			text, err := scrape(n.base)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text, want) {
				t.Fatalf("%s does not report mode %s:\n%s", n.id, mode, servicetest.MetricLines(text, "ordo_queue_mode"))
			}
		}
	}
	// setPhase rewrites every node's file and waits for each node to log
	// that it reloaded into the phase's mode.
	setPhase := func(enable, dual bool) {
		t.Helper()
		mode := modeOf(enable, dual)
		for _, n := range nodes {
			servicetest.WriteAtomically(t, n.cfgPath, runbookConfig(enable, dual, n.id, dbURL, tokenHash))
		}
		for _, n := range nodes {
			p := output.Await(t, n.id+" to reload into mode "+mode, func(p printed) bool {
				if p.exited && p.from == n.id {
					return true
				}
				m := reloadRE.FindStringSubmatch(p.line)
				return p.from == n.id+" stderr" && m != nil && (m[1] != "configuration reloaded" || m[2] == mode)
			})
			if m := reloadRE.FindStringSubmatch(p.line); p.exited || m[1] != "configuration reloaded" {
				t.Fatalf("%s did not reload into mode %s: %s", n.id, mode, p)
			}
		}
		checkMode(mode)
	}
	checkMode("dual-write")

	// Producers: one per node, bounded, at a modest rate. Each job
	// enqueued records the number enqueued so far in progress.
	const perProducer = 400
	progress := testsignal.New[int64]()
	var (
		mu       sync.Mutex
		jobs     []enqueued
		failures []string
		count    atomic.Int64
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for pi, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(8 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < perProducer; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				tenant := []string{"acme", "globex"}[i%2]
				body := fmt.Sprintf(`{"kind":"noop","payload":{"producer":%d,"n":%d,"node":%q}}`, pi, i, n.id)
				req, _ := http.NewRequest("POST", n.base+"/v1/tenants/"+tenant+"/jobs", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := httpClient.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s job %d: %v", n.id, i, err))
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var r struct {
					JobID        string `json:"job_id"`
					Mode         string `json:"mode"`
					Deduplicated bool   `json:"deduplicated"`
				}
				if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &r) != nil || r.JobID == "" || r.Deduplicated {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s job %d: %d %s", n.id, i, resp.StatusCode, b))
					mu.Unlock()
					continue
				}
				mu.Lock()
				jobs = append(jobs, enqueued{id: strings.ToLower(r.JobID), node: n.id, mode: r.Mode})
				mu.Unlock()
				progress.Record(count.Add(1))
			}
		}()
	}
	stopProducers := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopProducers)
	// more waits until the producers have enqueued n more jobs.
	more := func(what string, n int64) {
		t.Helper()
		target := count.Load() + n
		progress.Await(t, fmt.Sprintf("%d more jobs %s (%d enqueued before)", n, what, target-n), func(c int64) bool { return c >= target })
	}
	cli := func(args ...string) string {
		t.Helper()
		out, errOut, code := ordo(t, args...)
		if code != 0 {
			t.Fatalf("ordo %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	st := openRunbookDB(t, dbURL)
	defer st.close()
	phaseStart := time.Now()
	logPhase := func(name string) {
		l, h := st.unfinished(t)
		t.Logf("%-20s %6s (%d jobs enqueued; unfinished: %d legacy, %d HLC)", name,
			time.Since(phaseStart).Round(time.Millisecond), count.Load(), l, h)
		phaseStart = time.Now()
	}
	more("in phase 1 (dual-write)", 40)
	logPhase("phase 1 dual-write")
	t.Logf("backfill: %s", strings.TrimSpace(cli("backfill", "--all", "--db", dbURL)))
	more("after phase 2 (backfill)", 20)
	logPhase("phase 2 backfill")
	setPhase(true, true)
	more("in phase 3 (hlc-reads)", 40)
	logPhase("phase 3 hlc-reads")
	setPhase(true, false)
	more("in phase 4 (hlc-only)", 40)
	logPhase("phase 4 hlc-only")
	t.Logf("rollback-drain: %s", strings.TrimSpace(cli("rollback-drain", "--db", dbURL)))
	setPhase(false, false)
	more("after the rollback (legacy)", 40)
	logPhase("rollback to legacy")
	stopProducers()

	mu.Lock()
	for _, f := range failures {
		t.Errorf("enqueue failed: %s", f)
	}
	all := append([]enqueued(nil), jobs...)
	mu.Unlock()
	byMode := map[string]int{}
	for _, j := range all {
		byMode[j.mode]++
	}
	t.Logf("enqueued %d jobs, by mode at enqueue: %v", len(all), byMode)

	// Every job runs: a node logs that it succeeded (after recording
	// it), and then nothing is pending, scheduled or running on either
	// side.
	pending := map[string]bool{}
	for _, j := range all {
		pending[j.id] = true
	}
	output.Await(t, fmt.Sprintf("all %d jobs to succeed", len(all)), func(p printed) bool {
		if m := jobFinishedRE.FindStringSubmatch(p.line); m != nil && m[2] == "succeeded" {
			delete(pending, strings.ToLower(m[1]))
		}
		return len(pending) == 0
	})
	if l, h := st.unfinished(t); l != 0 || h != 0 {
		t.Fatalf("every job succeeded, yet %d legacy and %d HLC jobs are unfinished", l, h)
	}
	logPhase("drained")

	legacy, hlcSide := st.states(t)
	seen := map[string]bool{}
	for _, j := range all {
		if seen[j.id] {
			t.Errorf("job %s returned twice by the API", j.id)
		}
		seen[j.id] = true
		l, inL := legacy[j.id]
		h, inH := hlcSide[j.id]
		if !inL && !inH {
			t.Errorf("job %s (node %s, mode %s) is on neither side", j.id, j.node, j.mode)
			continue
		}
		for side, s := range map[string]jobRow{"legacy": l, "hlc": h} {
			if (side == "legacy" && !inL) || (side == "hlc" && !inH) {
				continue
			}
			if s.status != "succeeded" || s.attempts != 1 {
				t.Errorf("job %s (node %s, enqueued in %s, legacy=%v hlc=%v): %s side %s after %d attempts",
					j.id, j.node, j.mode, inL, inH, side, s.status, s.attempts)
			}
		}
	}
	for id := range legacy {
		if !seen[id] {
			t.Errorf("legacy job %s was never enqueued by the test", id)
		}
	}
	for id := range hlcSide {
		if !seen[id] {
			t.Errorf("HLC job %s was never enqueued by the test", id)
		}
	}

	cli("verify", "--all", "--db", dbURL)

	var enq, deq, succeeded, started float64
	for _, n := range nodes {
		text, err := scrape(n.base)
		if err != nil {
			t.Fatal(err)
		}
		enq += metricSum(text, "scheduler_hlc_enqueues_total")
		deq += metricSum(text, "scheduler_hlc_dequeues_total")
		succeeded += metricSum(text, "ordo_worker_events_total", `event="job_succeeded"`, `kind="noop"`)
		started += metricSum(text, "ordo_worker_events_total", `event="job_started"`, `kind="noop"`)
	}
	t.Logf("metrics: hlc enqueues %v, hlc dequeues %v, noop started %v, succeeded %v", enq, deq, started, succeeded)
	if enq <= 0 || deq <= 0 {
		t.Errorf("scheduler_hlc_enqueues_total = %v, scheduler_hlc_dequeues_total = %v: want both > 0", enq, deq)
	}
	if int(succeeded) != len(all) || int(started) != len(all) {
		t.Errorf("the workers started %v and completed %v noop jobs; %d were enqueued: each should run exactly once",
			started, succeeded, len(all))
	}

	stopAll()
	t.Logf("total %s", time.Since(start).Round(time.Millisecond))
}

type jobRow struct {
	status   string
	attempts int
}

// runbookDB reads both sides of the queue directly.
type runbookDB struct {
	pg     *pgx.Conn
	lite   *sql.DB
	prefix string
}

func openRunbookDB(t *testing.T, url string) *runbookDB {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(url, "sqlite:") {
		dsn := "file:" + strings.TrimPrefix(url, "sqlite:") + "?_pragma=busy_timeout(10000)"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		return &runbookDB{lite: db}
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	return &runbookDB{pg: c, prefix: "scheduler."}
}

func (d *runbookDB) close() {
	if d.pg != nil {
		_ = d.pg.Close(context.Background())
	}
	if d.lite != nil {
		_ = d.lite.Close()
	}
}

// resultRows is what query reads of pgx's and database/sql's rows alike.
type resultRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

func (d *runbookDB) query(t *testing.T, q string, each func(scan func(...any) error)) {
	t.Helper()
	ctx := context.Background()
	var rows resultRows
	var err error
	if d.pg != nil {
		var pgRows pgx.Rows
		if pgRows, err = d.pg.Query(ctx, q); err == nil {
			defer pgRows.Close()
			rows = pgRows
		}
	} else {
		var liteRows *sql.Rows
		if liteRows, err = d.lite.QueryContext(ctx, q); err == nil {
			defer liteRows.Close()
			rows = liteRows
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	for rows.Next() {
		each(rows.Scan)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (d *runbookDB) unfinished(t *testing.T) (legacy, hlcSide int) {
	t.Helper()
	const where = ` WHERE status IN ('pending', 'scheduled', 'running')`
	d.query(t, `SELECT count(*) FROM `+d.prefix+`jobs`+where, func(scan func(...any) error) { _ = scan(&legacy) })
	d.query(t, `SELECT count(*) FROM `+d.prefix+`job_state`+where, func(scan func(...any) error) { _ = scan(&hlcSide) })
	return legacy, hlcSide
}

func (d *runbookDB) states(t *testing.T) (legacy, hlcSide map[string]jobRow) {
	t.Helper()
	cast := "CAST(id AS TEXT)"
	castJ := "CAST(job_id AS TEXT)"
	read := func(q string) map[string]jobRow {
		m := map[string]jobRow{}
		d.query(t, q, func(scan func(...any) error) {
			var id string
			var r jobRow
			if err := scan(&id, &r.status, &r.attempts); err != nil {
				t.Fatal(err)
			}
			m[strings.ToLower(id)] = r
		})
		return m
	}
	return read(`SELECT ` + cast + `, status, attempts FROM ` + d.prefix + `jobs`),
		read(`SELECT ` + castJ + `, status, attempts FROM ` + d.prefix + `job_state`)
}
