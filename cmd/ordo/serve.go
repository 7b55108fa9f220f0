package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/store"
)

func newServeCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	var listen string
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run this node: the JSON HTTP API, the web dashboard, /metrics, /healthz, /readyz, and the built-in http and noop workers",
		Long: `Runs one ordo node until SIGINT or SIGTERM, then shuts down gracefully: requests in flight and running
jobs finish (within Ordo:Http:ShutdownTimeout), the rest go back to the queue.

The configuration comes from --config (YAML in the migration guide's shape, so its Scheduler:Queue:Hlc snippets
work verbatim), the environment (Scheduler__Queue__Hlc__EnableHlcOrdering=true, Ordo__Http__Listen=..., and
ORDO_DATABASE_URL), and the flags, in that order; see docs/configuration.md. It is validated at start: every
bad value is reported at once and the service does not start.

The Hlc options, the configured tokens and the http kind's allowed hosts change on the running service when the
file changes (it is polled every Ordo:Reload:PollInterval) or on SIGHUP; other keys need a restart. The API is
described in docs/api.md; the web dashboard, served at /, in docs/dashboard.md.`,
		Example: `  ordo serve --config /etc/ordo/ordo.yaml
  ordo serve --db sqlite:ordo.db --demo
  Scheduler__Queue__Hlc__DualWriteMode=true ordo serve --config ordo.yaml --listen 0.0.0.0:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var extra []config.Override
			if cmd.Flags().Changed("listen") {
				extra = append(extra, config.Override{Key: "Ordo:Http:Listen", Value: listen, Origin: "flag --listen"})
			}
			if demo {
				extra = append(extra, config.Override{Key: "Ordo:Demo:Enabled", Value: true, Origin: "flag --demo"})
			}
			cfg, src, err := loadConfig(g, cf.path, true, extra...)
			if err != nil {
				return err
			}
			if cfg.Ordo.Demo.Enabled {
				// The demo's defaults go under what the operator set, so
				// the configuration is read again with them.
				key := cfg.Ordo.Audit.SigningKeyFile
				if key == "" {
					if key, err = service.DemoSigningKey(cfg.Ordo.Database.Url); err != nil {
						return err
					}
				}
				src.Defaults = service.DemoDefaults(key)
				if cfg, err = config.Load(src); err != nil {
					return err
				}
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{})
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						select {
						case reload <- struct{}{}:
						case <-ctx.Done():
							return
						}
					}
				}
			}()
			out := cmd.OutOrStdout()
			var demoToken string // printed once the service listens
			svc, err := service.New(ctx, cfg, service.Options{
				LogOutput:    cmd.ErrOrStderr(),
				Reload:       &src,
				ReloadSignal: reload,
				Started: func(url string) {
					fmt.Fprintf(out, "ordo: serving %s (node %s, mode %s, database %s)\n", url, cfg.Ordo.NodeId,
						cfg.Scheduler.Queue.Hlc.QueueOptions().Mode(), config.RedactURL(cfg.Ordo.Database.Url))
					if demoToken != "" {
						fmt.Fprintf(out, "ordo: dashboard %s/ (demo: log in with the admin token %s)\n", url, demoToken)
						return
					}
					fmt.Fprintf(out, "ordo: dashboard %s/ (log in with a token: ordo token create --admin)\n", url)
				},
			})
			if err != nil {
				return err
			}
			if cfg.Ordo.Demo.Enabled {
				// A newcomer's first run should show the dashboard without a
				// second command: the demo mints an admin token of its own.
				ts := svc.Queue().Backend()
				now := time.Now()
				text, rec, err := service.NewToken("", true, "demo", now)
				// It also expires, so that a demo killed before it could
				// revoke its token does not leave an admin token behind.
				rec.ExpiresAt = now.Add(service.DemoTokenLifetime)
				if err == nil {
					err = ts.CreateToken(ctx, rec)
				}
				if err != nil {
					return fmt.Errorf("creating the demo's admin token: %w", err)
				}
				demoToken = text
				// It lasts as long as this demo runs. The service has
				// closed its database by then, so the revocation opens it
				// again.
				defer func() {
					rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
					defer cancel()
					err := revokeToken(rctx, cfg.Ordo.Database.Url, rec.ID)
					if err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "ordo: revoking the demo's admin token %s failed: %v (revoke it with ordo token revoke)\n", rec.ID, err)
					}
				}()
			}
			if err := svc.Run(ctx); err != nil {
				return err
			}
			fmt.Fprintln(out, "ordo: stopped")
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", config.DefaultListen, "address to serve on (Ordo:Http:Listen); port 0 picks a free one")
	cmd.Flags().BoolVar(&demo, "demo", false, "show ordo as it is meant to be seen: HLC ordering, signed checkpoints, and a trickle of sample noop jobs for two tenants from two nodes (Ordo:Demo)")
	return cmd
}

// revokeToken revokes token id in the database at url.
func revokeToken(ctx context.Context, url, id string) error {
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.RevokeToken(ctx, id, time.Now())
}
