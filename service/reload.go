package service

import (
	"context"
	"errors"
	"strings"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/queue"
)

// ReloadResult reports one reload.
type ReloadResult struct {
	// Err is why the new configuration was not (entirely) applied: it did
	// not load, or the queue refused its options. Nil when applied.
	Err error
	// Applied lists the keys whose new values are now in force.
	Applied []string
	// NeedRestart lists the keys that changed but take effect only when
	// the service restarts.
	NeedRestart []string
	// Mode is the queue's mode after the reload.
	Mode queue.Mode
}

// applyReload is the watcher's callback.
func (s *Service) applyReload(ctx context.Context, next *config.Config, loadErr error) {
	var res ReloadResult
	if loadErr != nil {
		res = ReloadResult{Err: loadErr, Mode: s.q.Mode()}
		s.log.Error("configuration not reloaded: the running configuration stays in force", "error", loadErr)
		s.metrics.reloads.WithLabelValues("failure").Inc()
	} else {
		res = s.Reload(ctx, next)
	}
	if s.opts.OnReload != nil {
		s.opts.OnReload(res)
	}
}

// Reload applies the keys of next that change on a running service: the
// Hlc options (through Queue.SetOptions: writes in flight finish under the
// old mode, and jobs are brought over to the side reads switch to, so none
// is lost or run twice), Ordo:Auth:Tokens and
// Ordo:Worker:HttpKind:AllowedHosts. Other changed keys are logged as
// needing a restart and left as they are.
func (s *Service) Reload(ctx context.Context, next *config.Config) ReloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.cfg.Load()
	live, restart := config.Diff(cur, next)
	applied := *cur
	res := ReloadResult{NeedRestart: restart}
	var errs []error
	hlcChanged, tokensChanged, hostsChanged := false, false, false
	for _, k := range live {
		switch {
		case strings.HasPrefix(k, "Scheduler:Queue:Hlc:"):
			hlcChanged = true
		case k == "Ordo:Auth:Tokens":
			tokensChanged = true
		case k == "Ordo:Worker:HttpKind:AllowedHosts":
			hostsChanged = true
		}
	}
	if hlcChanged {
		want := next.Scheduler.Queue.Hlc.QueueOptions()
		err := s.q.SetOptions(ctx, want)
		if err != nil {
			errs = append(errs, err)
		}
		// SetOptions switches before it reconciles: a failed backfill or
		// drain leaves the new options in force (and the next reload or
		// restart finishes the reconciliation).
		if s.q.Options() == want {
			applied.Scheduler = next.Scheduler
			for _, k := range live {
				if strings.HasPrefix(k, "Scheduler:Queue:Hlc:") {
					res.Applied = append(res.Applied, k)
				}
			}
		}
	}
	if tokensChanged {
		s.auth.setConfigTokens(next.Ordo.Auth.Tokens)
		applied.Ordo.Auth = next.Ordo.Auth
		res.Applied = append(res.Applied, "Ordo:Auth:Tokens")
	}
	if hostsChanged {
		s.hosts.Store(newHostList(next.Ordo.Worker.HttpKind.AllowedHosts))
		applied.Ordo.Worker.HttpKind.AllowedHosts = next.Ordo.Worker.HttpKind.AllowedHosts
		res.Applied = append(res.Applied, "Ordo:Worker:HttpKind:AllowedHosts")
	}
	s.cfg.Store(&applied)
	res.Err = errors.Join(errs...)
	res.Mode = s.q.Mode()
	if res.Err != nil {
		s.metrics.reloads.WithLabelValues("failure").Inc()
		s.log.Error("configuration reload failed", "error", res.Err, "applied", res.Applied, "mode", res.Mode.String())
	} else {
		s.metrics.reloads.WithLabelValues("success").Inc()
		s.log.Info("configuration reloaded", "applied", res.Applied, "mode", res.Mode.String())
	}
	if len(restart) > 0 {
		s.log.Warn("configuration keys changed that take effect only after a restart", "keys", restart)
	}
	return res
}
