package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/config"
)

// TestDocumentation: docs/configuration.md documents every key, and its
// full example loads and sets every key.
func TestDocumentation(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, k := range config.Keys() {
		if !strings.Contains(text, "`"+k.Key+"`") {
			t.Errorf("docs/configuration.md does not document %s", k.Key)
		}
	}
	_, rest, ok := strings.Cut(text, "## Full example")
	if !ok {
		t.Fatal("no full example")
	}
	_, rest, _ = strings.Cut(rest, "```yaml\n")
	example, _, _ := strings.Cut(rest, "```")
	path := filepath.Join(t.TempDir(), "example.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Source{File: path})
	if err != nil {
		t.Fatalf("the full example does not load: %v", err)
	}
	if cfg.Ordo.NodeId != "scheduler-east-1" || len(cfg.Ordo.Auth.Tokens) != 2 || len(cfg.Ordo.Worker.HttpKind.AllowedHosts) != 3 {
		t.Fatalf("example loaded as %+v", cfg.Ordo)
	}
	for _, k := range config.Keys() {
		parts := strings.Split(k.Key, ":")
		if !strings.Contains(example, parts[len(parts)-1]+":") {
			t.Errorf("the full example does not set %s", k.Key)
		}
	}
	// The guide's phase 1 snippet at the top is a whole configuration.
	_, rest, _ = strings.Cut(text, "```yaml\n")
	first, _, _ := strings.Cut(rest, "```")
	if err := os.WriteFile(path, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.Load(config.Source{File: path, Hostname: host("h")}); err != nil || !cfg.Scheduler.Queue.Hlc.DualWriteMode {
		t.Fatalf("first snippet: %v", err)
	}
}
