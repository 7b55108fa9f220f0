// Package witnesstest runs a real C2SP tlog-witness for ordo's tests:
// filippo.io/torchwood's litewitness and witnessctl at the version
// tools/witness/go.mod pins, built from the Go module proxy (never
// vendored) once per user cache, signing with an Ed25519 key held by a
// dedicated ssh-agent (openssh-client; scripts/ensure-openssh.sh).
//
// Invariants: everything listens on loopback only; every process started
// is stopped at the test's end (t.Cleanup); every wait is bounded by
// testsignal.Timeout and waits for a condition (a socket accepting, the
// witness answering), never for time to pass. It is a package of its own
// (not a _test.go file) because the tests of several packages import it;
// nothing outside tests should.
package witnesstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/internal/testsignal"
)

// toolsModule is the directory of the tools/witness module.
func toolsModule() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "tools", "witness")
}

// Register registers the log of origin with the witness, verified by
// vkey (its name must be origin: C2SP tlog-witness).
func (w *Witness) Register(t testing.TB, origin, vkey string) {
	t.Helper()
	for _, args := range [][]string{
		{"add-log", "-db", w.DB, "-origin", origin},
		{"add-key", "-db", w.DB, "-origin", origin, "-key", vkey},
	} {
		if out, err := exec.Command(w.Witnessctl, args...).CombinedOutput(); err != nil {
			t.Fatalf("witnessctl %v: %v\n%s", args, err, out)
		}
	}
}

// Logs returns what witnessctl list-logs prints: one JSON line per log
// with its origin, size and root hash.
func (w *Witness) Logs(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(w.Witnessctl, "list-logs", "-db", w.DB).CombinedOutput()
	if err != nil {
		t.Fatalf("witnessctl list-logs: %v\n%s", err, out)
	}
	return string(out)
}

// torchwoodVersion is the witness the tests run; tools/witness/go.mod
// pins it.
const torchwoodVersion = "v0.6.1"

var (
	witnessToolsOnce sync.Once
	witnessToolsDir  string
	witnessToolsErr  error
)

// witnessTools builds litewitness and witnessctl from the Go module proxy,
// in the tools/witness module, once per user cache (the binaries are
// reused by later runs).
func witnessTools(t testing.TB) (litewitness, witnessctl string) {
	t.Helper()
	witnessToolsOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "ordo-test-tools", "torchwood-"+torchwoodVersion)
		if fileExists(filepath.Join(dir, "litewitness")) && fileExists(filepath.Join(dir, "witnessctl")) {
			witnessToolsDir = dir
			return
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			witnessToolsErr = err
			return
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
		if err != nil {
			witnessToolsErr = err
			return
		}
		defer os.RemoveAll(tmp)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp+string(filepath.Separator),
			"filippo.io/torchwood/cmd/litewitness", "filippo.io/torchwood/cmd/witnessctl")
		cmd.Dir = toolsModule()
		// The versions are go.sum's: nothing is resolved anew.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			witnessToolsErr = fmt.Errorf("building litewitness %s in tools/witness: %v\n%s", torchwoodVersion, err, out)
			return
		}
		// Another test process may have won the race: either copy works.
		if err := os.Rename(tmp, dir); err != nil && !fileExists(filepath.Join(dir, "litewitness")) {
			witnessToolsErr = err
			return
		}
		witnessToolsDir = dir
	})
	if witnessToolsErr != nil {
		t.Fatal(witnessToolsErr)
	}
	return filepath.Join(witnessToolsDir, "litewitness"), filepath.Join(witnessToolsDir, "witnessctl")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// startProcess starts cmd, its output into a file of dir, and stops it at
// the test's end. The returned channel closes when it exits.
func startProcess(t testing.TB, dir, name string, cmd *exec.Cmd) (logFile string, exited <-chan struct{}, stop func()) {
	t.Helper()
	logFile = filepath.Join(dir, name+".log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			select {
			case <-done:
			case <-time.After(testsignal.Timeout):
				t.Errorf("%s did not exit within %v of SIGKILL", name, testsignal.Timeout)
			}
		})
	}
	t.Cleanup(stop)
	return logFile, done, stop
}

// waitFor calls ok until it holds, failing the test when the process
// exits first or testsignal.Timeout passes.
func waitFor(t testing.TB, what, logFile string, exited <-chan struct{}, ok func() bool) {
	t.Helper()
	deadline := time.After(testsignal.Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !ok() {
		select {
		case <-exited:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%s: the process exited:\n%s", what, b)
		case <-deadline:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("%s: not within %v:\n%s", what, testsignal.Timeout, b)
		case <-tick.C:
		}
	}
}

// freeLoopbackAddr returns a 127.0.0.1 address no one listens on now.
func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Witness is a running litewitness.
type Witness struct {
	URL  string // http://127.0.0.1:PORT, the add-checkpoint prefix
	VKey string // its cosignature verifier key, as it prints it
	DB   string // its database, for witnessctl
	// Witnessctl is the witnessctl binary of the same version.
	Witnessctl string
	// Stop kills it (and is also done at the test's end).
	Stop func()
}

// Name is the name of every test witness (its key name).
const Name = "witness.test/ordo"

// Start runs a dedicated ssh-agent holding a new Ed25519 key and a
// litewitness signing with it, listening on loopback; both are stopped
// at the test's end.
func Start(t testing.TB) *Witness {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the witness test needs openssh-client (run scripts/ensure-openssh.sh as root; make test does)", tool)
		}
	}
	litewitness, witnessctl := witnessTools(t)
	// A short directory: a unix socket path is limited to ~100 bytes.
	dir, err := os.MkdirTemp("", "ow")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	keyFile := filepath.Join(dir, "witness")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ordo-test-witness", "-f", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	fp, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", keyFile+".pub").Output()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v", err)
	}
	fields := strings.Fields(string(fp))
	if len(fields) < 2 || !strings.HasPrefix(fields[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l: %q", fp)
	}
	sock := filepath.Join(dir, "agent.sock")
	agentLog, agentExited, _ := startProcess(t, dir, "ssh-agent", exec.Command("ssh-agent", "-a", sock, "-D"))
	waitFor(t, "ssh-agent listening", agentLog, agentExited, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	add := exec.Command("ssh-add", keyFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	addr := freeLoopbackAddr(t)
	db := filepath.Join(dir, "litewitness.db")
	lw := exec.Command(litewitness, "-db", db, "-name", Name, "-key", fields[1], "-ssh-agent", sock, "-listen", addr)
	lwLog, lwExited, stop := startProcess(t, dir, "litewitness", lw)
	url := "http://" + addr
	var index []byte
	waitFor(t, "litewitness serving", lwLog, lwExited, func() bool {
		resp, err := http.Get(url + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		index, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK
	})
	vkey := regexp.MustCompile(regexp.QuoteMeta(Name) + `\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+`).Find(index)
	if vkey == nil {
		t.Fatalf("no verifier key on litewitness's index page:\n%s", index)
	}
	return &Witness{URL: url, VKey: string(vkey), DB: db, Witnessctl: witnessctl, Stop: stop}
}
