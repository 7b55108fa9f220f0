package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// childFlag makes the binary measure one system-run and print its result.
const childFlag = "-child"

// resultPrefix starts the child's result line on its stdout.
const resultPrefix = "BENCH-RESULT "

// childSpec is what the parent passes to a child, as JSON.
type childSpec struct {
	Scenario string `json:"scenario"`
	System   string `json:"system"`
	URL      string `json:"url"`
	Params   params `json:"params"`
	// Profile, if set, is a file for a CPU profile of the measurement.
	Profile string `json:"profile,omitempty"`
}

// runChild re-executes this binary to measure one system-run in its own
// process, so that its CPU time and peak RSS are that system's alone.
func runChild(ctx context.Context, spec childSpec) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	arg, err := json.Marshal(spec)
	if err != nil {
		return result{}, err
	}
	cmd := exec.CommandContext(ctx, self, childFlag, string(arg))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("measuring in a child process: %w", err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, resultPrefix); ok {
			var r result
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				return result{}, fmt.Errorf("reading the child's result: %w", err)
			}
			return r, nil
		}
	}
	return result{}, fmt.Errorf("the child process printed no result")
}

// childMain measures the system-run that arg describes.
func childMain(arg string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(arg), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	sc, ok := findScenario(spec.Scenario)
	if !ok {
		fmt.Fprintln(os.Stderr, "bench child: unknown scenario", spec.Scenario)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if spec.Profile != "" {
		f, err := os.Create(spec.Profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			return 1
		}
	}
	r, err := sc.measure(ctx, spec.Params, spec.System, spec.URL)
	if spec.Profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench child: %s, %s: %v\n", spec.Scenario, spec.System, err)
		return 1
	}
	b, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	fmt.Println(resultPrefix + string(b))
	return 0
}
