package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Set at link time by `make build` for a release (see the Makefile's
// VERSION and BUILD_DATE):
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD) -X main.buildDate=2026-12-02T17:00:00Z" ./cmd/ordo
//
// Left empty, the version comes from the module's build info (set by
// `go install github.com/ordo-sched/ordo/cmd/ordo@v0.1.0`), else it is
// develVersion. The commit recorded by the go command (vcs.revision) wins
// over the linked one; the linked one serves builds the go command does
// not stamp (a git worktree, -buildvcs=false).
var (
	version   string
	commit    string
	buildDate string
)

// develVersion is the version of a binary built from a checkout without a
// release version: what the go command records for the main module then.
const develVersion = "(devel)"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print ordo's version, commit, build date and Go version",
		Example: "  ordo version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			bi, _ := debug.ReadBuildInfo()
			fmt.Fprint(cmd.OutOrStdout(), formatVersion(linked{version, commit, buildDate}, bi))
		},
	}
}

// linked are the values set with -ldflags -X.
type linked struct{ version, commit, date string }

// formatVersion is what `ordo version` prints: the version (the linked
// one, else the main module's version in bi, else "(devel)"), then one line
// each for the commit (vcs.revision, else the linked one; "+modified" when
// vcs.modified says the work tree had changes), the commit's time
// (vcs.time), the build date (linked by make build; "unknown" otherwise)
// and the Go version and platform. bi may be nil (no build info). A binary
// installed from the module proxy carries no vcs settings: its commit
// reads "unknown", its version names the release.
func formatVersion(link linked, bi *debug.BuildInfo) string {
	v := link.version
	goVersion := runtime.Version()
	settings := map[string]string{}
	if bi != nil {
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	if v == "" {
		v = develVersion
	}
	rev := or(settings["vcs.revision"], or(link.commit, "unknown"))
	if settings["vcs.modified"] == "true" {
		rev += "+modified"
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	if settings["GOOS"] != "" && settings["GOARCH"] != "" {
		platform = settings["GOOS"] + "/" + settings["GOARCH"]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ordo %s\n", v)
	fmt.Fprintf(&b, "commit:      %s\n", rev)
	fmt.Fprintf(&b, "commit time: %s\n", or(settings["vcs.time"], "unknown"))
	fmt.Fprintf(&b, "built:       %s\n", or(link.date, "unknown"))
	fmt.Fprintf(&b, "go:          %s %s\n", goVersion, platform)
	return b.String()
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}
