package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// podman runs podman as make container does (PODMAN), with runc: crun
// refuses the development VM's hybrid cgroup hierarchy.
var podman = []string{"podman", "--storage-driver", "vfs", "--runtime", "runc"}

// runLimits are the containers' resource limits, set no higher than the
// test's own: podman's defaults are higher, and raising a limit needs a
// capability the development VM does not give.
var runLimits = []string{"--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"}

// containerTimeout bounds each podman command (a stuck one fails the
// test rather than hanging it).
const containerTimeout = 2 * time.Minute

func podmanCmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, podman[0], append(podman[1:], args...)...)
}

func TestContainer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), containerTimeout)
	defer cancel()
	bin := ordoBinary(t)
	tag := fmt.Sprintf("localhost/ordo-deploytest:%d", os.Getpid())
	if out, err := exec.CommandContext(ctx, "make", "-s", "-C", "..", "container", "CONTAINER_BIN="+bin, "CONTAINER_TAG="+tag).CombinedOutput(); err != nil {
		t.Fatalf("make container: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = podmanCmd(context.Background(), "rmi", "--force", tag).Run() })

	if out, err := podmanCmd(ctx, "image", "inspect", "--format", "{{.Config.User}}", tag).Output(); err != nil || strings.TrimSpace(string(out)) != "65532:65532" {
		t.Errorf("the image's user is %q (%v), want 65532:65532", out, err)
	}
	out, err := podmanCmd(ctx, append(append([]string{"run", "--rm"}, runLimits...), tag, "version")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "ordo "+testVersion+"\n") {
		t.Fatalf("ordo version in the container: %v\n%s", err, out)
	}

	// ordo serve, on the image's default SQLite database in its state
	// directory, listening on a loopback port the kernel picks (the host's
	// network, so that the test reaches it on loopback).
	name := fmt.Sprintf("ordo-deploytest-%d", os.Getpid())
	args := append([]string{"run", "--rm", "--name", name, "--network", "host",
		"-e", "Ordo__Http__Listen=127.0.0.1:0", "-e", "Ordo__NodeId=container-test"}, runLimits...)
	serve := podmanCmd(ctx, append(args, tag, "serve")...)
	pr, pw := io.Pipe()
	serve.Stdout, serve.Stderr = pw, pw
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { err := serve.Wait(); _ = pw.Close(); exited <- err }()
	stopped := false
	defer func() {
		if !stopped {
			_ = podmanCmd(context.Background(), "rm", "--force", name).Run()
			<-exited
		}
	}()
	var log strings.Builder
	urlRE := regexp.MustCompile(`^ordo: serving (http://127\.0\.0\.1:[0-9]+) `)
	sc := bufio.NewScanner(pr)
	url := ""
	for url == "" && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
		}
	}
	if url == "" {
		t.Fatalf("ordo serve in the container never said where it serves:\n%s", log.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ready"`) || !strings.Contains(string(body), `"node":"container-test"`) {
		t.Fatalf("GET /readyz: %d %s", resp.StatusCode, body)
	}
	// podman stop sends SIGTERM: ordo shuts down gracefully and exits 0.
	if out, err := podmanCmd(ctx, "stop", "--time", "30", name).CombinedOutput(); err != nil {
		t.Fatalf("podman stop: %v\n%s", err, out)
	}
	stopped = true
	if err := <-exited; err != nil {
		t.Fatalf("ordo serve in the container exited with %v after SIGTERM", err)
	}
}
