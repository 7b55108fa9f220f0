package ordo_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeRunTimeout bounds building and running the README's program.
const readmeRunTimeout = 3 * time.Minute

// goBlocks returns the ```go blocks of README.md that are whole programs.
func goBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if strings.HasPrefix(m[1], "package main\n") {
			out = append(out, m[1])
		}
	}
	return out
}

// The README's handler program compiles against this tree and does what
// the README says: on a fresh directory it runs the job it inserts, and
// stops cleanly on Ctrl-C.
func TestReadmeProgram(t *testing.T) {
	blocks := goBlocks(t)
	if len(blocks) != 1 {
		t.Fatalf("README.md has %d whole Go programs, want 1 (the handler program)", len(blocks))
	}
	ctx, cancel := context.WithTimeout(context.Background(), readmeRunTimeout)
	defer cancel()

	// A directory whose name starts with "_" is inside the module but
	// outside ./..., so the program builds against this tree without
	// becoming one of its packages.
	src, err := os.MkdirTemp(".", "_readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(src) })
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(blocks[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "readme")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+filepath.Base(src)).CombinedOutput(); err != nil {
		t.Fatalf("the README's program does not build: %v\n%s", err, out)
	}

	dir := t.TempDir() // its sqlite:ordo.db is created here
	// The first run sends the mail; the second, as the README says, finds
	// the job of the first (deduplicated) and sends nothing.
	first := runUntil(t, ctx, bin, dir, "sending to ada@example.com attempt 1")
	if !strings.Contains(first, "deduplicated: false") {
		t.Fatalf("the first run did not report a new job:\n%s", first)
	}
	second := runUntil(t, ctx, bin, dir, "deduplicated: true")
	if strings.Contains(second, "sending to") {
		t.Fatalf("the second run sent the mail again:\n%s", second)
	}
}

// runUntil runs bin in dir until it prints want, then stops it with
// Ctrl-C, and returns everything it printed; it fails t if bin ends
// without printing want or does not exit cleanly.
func runUntil(t *testing.T, ctx context.Context, bin, dir, want string) string {
	t.Helper()
	run := exec.CommandContext(ctx, bin)
	run.Dir = dir
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	run.Stderr = &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	seen := false
	for !seen && lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		seen = strings.HasSuffix(lines.Text(), want)
	}
	if !seen {
		_ = run.Process.Kill()
		_ = run.Wait()
		t.Fatalf("the README's program ended without printing %q; stdout:\n%sstderr:\n%s", want, out.String(), stderr.String())
	}
	if err := run.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // drain until it exits
		out.WriteString(lines.Text() + "\n")
	}
	if err := run.Wait(); err != nil {
		t.Fatalf("after Ctrl-C the README's program exited with %v; stderr:\n%s", err, stderr.String())
	}
	return out.String()
}
