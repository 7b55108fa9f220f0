package config

import (
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// Watcher reloads a configuration when its file changes (polled: the
// SHA-256 of its bytes every Interval) or when told to (Trigger, e.g. on
// SIGHUP).
//
// A changed file is loaded once two polls in a row read the same bytes,
// and an empty file is never loaded by a poll (only by Trigger), so a
// file caught half-written (truncated, then written, as `>` in a shell
// does) is not taken for the new configuration. Replace the file
// atomically (write a new one, rename it over the old) and nothing is
// ever read half-written.
type Watcher struct {
	// Source is what Load reads each time; its File is polled.
	Source Source
	// Interval between polls of the file; 0 polls never (Trigger still
	// reloads).
	Interval time.Duration
	// OnReload receives every reloaded configuration, or the error that
	// kept the file from loading (the running configuration stays). It is
	// called from Run's goroutine, one call at a time.
	OnReload func(cfg *Config, err error)
}

// Run polls and reloads until ctx ends. current is the configuration in
// force, whose file hash is the starting point; a value on trigger reloads
// whether the file changed or not.
func (w *Watcher) Run(ctx context.Context, current *Config, trigger <-chan struct{}) {
	last := current.FileHash()
	var seen [32]byte // the bytes of the previous poll, while they differ from last
	var tick <-chan time.Time
	if w.Interval > 0 && w.Source.File != "" {
		t := time.NewTicker(w.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick:
			b, err := os.ReadFile(w.Source.File)
			if err != nil || len(b) == 0 {
				// A file being replaced may be briefly absent; report it
				// once, on the next successful read or load.
				continue
			}
			h := sha256.Sum256(b)
			if h == last {
				seen = last
				continue
			}
			if h != seen {
				seen = h // changed: load when the next poll reads the same
				continue
			}
		}
		cfg, err := Load(w.Source)
		if err == nil {
			last = cfg.FileHash()
		} else if b, rerr := os.ReadFile(w.Source.File); rerr == nil {
			last = sha256.Sum256(b) // report a bad file once, not at every poll
		}
		w.OnReload(cfg, err)
	}
}
