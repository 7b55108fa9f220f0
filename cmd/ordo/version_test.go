package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "6b88759a0c3e2f1d9b8a7c6d5e4f3a2b1c0d9e8f"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	for _, tc := range []struct {
		name string
		link linked
		bi   *debug.BuildInfo
		want string
	}{{
		name: "make build of a tagged release", link: linked{version: "v0.1.0", commit: "ignored: the go command's vcs.revision wins", date: "2026-12-02T17:00:00Z"},
		bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
		want: "ordo v0.1.0\n" +
			"commit:      6b88759a0c3e2f1d9b8a7c6d5e4f3a2b1c0d9e8f\n" +
			"commit time: 2026-12-01T10:00:00Z\n" +
			"built:       2026-12-02T17:00:00Z\n" +
			"go:          go1.26.8 linux/arm64\n",
	}, {
		name: "go install from the module proxy: a version, no vcs settings",
		bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.1.0"}},
		want: "ordo v0.1.0\ncommit:      unknown\ncommit time: unknown\nbuilt:       unknown\n" +
			"go:          go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
	}, {
		name: "go build in a checkout with changes",
		bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: append(vcs[:len(vcs)-1:len(vcs)-1], debug.BuildSetting{Key: "vcs.modified", Value: "true"})},
		want: "ordo (devel)\n" +
			"commit:      6b88759a0c3e2f1d9b8a7c6d5e4f3a2b1c0d9e8f+modified\n" +
			"commit time: 2026-12-01T10:00:00Z\n" +
			"built:       unknown\n" +
			"go:          go1.26.8 linux/arm64\n",
	}, {
		name: "make build in a git worktree, which the go command does not stamp",
		link: linked{version: "v0.1.0", commit: "6b8875978ea5e6a298e7c17cd72083fa3c6d52e3", date: "2026-12-02T17:00:00Z"},
		bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs[:2]},
		want: "ordo v0.1.0\n" +
			"commit:      6b8875978ea5e6a298e7c17cd72083fa3c6d52e3\n" +
			"commit time: unknown\n" +
			"built:       2026-12-02T17:00:00Z\n" +
			"go:          go1.26.8 linux/arm64\n",
	}, {
		name: "no build info",
		want: "ordo (devel)\ncommit:      unknown\ncommit time: unknown\nbuilt:       unknown\n" +
			"go:          " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatVersion(tc.link, tc.bi); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, stderr, code := runCLI(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("ordo version: exit %d, stderr %q", code, stderr)
	}
	// A test binary's main module is the one under test, at (devel).
	if !strings.HasPrefix(out, "ordo (devel)\ncommit: ") || !strings.Contains(out, "\ngo:          "+runtime.Version()+" ") {
		t.Fatalf("ordo version printed:\n%s", out)
	}
}
