package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/store"
	"github.com/ordo-sched/ordo/store/sqlite"
)

// configFile is the --config flag of the commands that read ordo's
// configuration. (If --config becomes a persistent flag of the root
// command, loadConfig is where its value goes.)
type configFile struct{ path string }

func (c *configFile) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.path, "config", "", "configuration file, YAML in the migration guide's shape (default $ORDO_CONFIG); see docs/configuration.md")
}

// loadConfig reads ordo's configuration as every command does: the file
// (a command's own --config, else the global one, else $ORDO_CONFIG), the
// environment (Scheduler__..., Ordo__..., ORDO_DATABASE_URL), then the
// global flags --db and --node, then extra (a command's own flags).
// Without needNode, a host name that is no valid node id is not an error;
// commands that stamp timestamps need a node id.
func loadConfig(g *globalFlags, file string, needNode bool, extra ...config.Override) (*config.Config, config.Source, error) {
	if file == "" {
		file = g.config
	}
	src := config.ForCLI(file, g.db, g.node)
	src.NodeOptional = !needNode
	src.Overrides = append(src.Overrides, extra...)
	cfg, err := config.Load(src)
	return cfg, src, err
}

// databaseURL is the configured database: --db, else the configuration,
// else the embedded default.
func (g *globalFlags) databaseURL() (string, error) {
	cfg, _, err := loadConfig(g, "", false)
	if err != nil {
		return "", err
	}
	return cfg.Ordo.Database.Url, nil
}

// nodeID is the configured node id: --node, else the configuration, else
// the host name, the stable identifier the guide suggests. A host name
// that is not a valid node id is an error rather than silently rewritten,
// so two nodes never end up with one id.
func (g *globalFlags) nodeID() (string, error) {
	cfg, _, err := loadConfig(g, "", true)
	if err != nil {
		return "", err
	}
	return cfg.Ordo.NodeId, nil
}

// open opens the configured database as it is, without migrating it
// (the migrate command reports what it applies, and what is pending).
func (g *globalFlags) open(ctx context.Context) (store.DB, error) {
	url, err := g.databaseURL()
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, url)
}

// withDB runs fn on the configured database, opened as it is (open) and
// closed afterwards.
func (g *globalFlags) withDB(ctx context.Context, fn func(store.DB) error) error {
	db, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// openMigrated opens the database and applies pending migrations, which is
// what every command that reads or writes jobs needs first.
func (g *globalFlags) openMigrated(ctx context.Context) (store.DB, error) {
	url, err := g.databaseURL()
	if err != nil {
		return nil, err
	}
	return store.OpenMigrated(ctx, url)
}

// mustExist refuses a SQLite URL whose file is not there: commands that
// read (jobs, verify, proof, snapshot, queues list, migrate status) must
// not create an empty database and answer from it, as they did for a
// mistyped --db; nor do the audit commands that write (openAudit).
func mustExist(url string) error {
	path, ok := sqlite.PathOf(url)
	if !ok || path == "" || path == ":memory:" {
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database at %s (%s): check --db or the configuration; `ordo migrate` creates it, and so does `ordo serve`", path, url)
	}
	return nil
}

// openConfigured opens the database of cfg and applies pending migrations.
func openConfigured(ctx context.Context, cfg *config.Config) (store.DB, error) {
	return store.OpenMigrated(ctx, cfg.Ordo.Database.Url)
}

// printJSON is how every command prints JSON: indented, one value.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printResult prints v as JSON with asJSON, else as text does; the
// commands with a --json flag print their one result this way.
func printResult(w io.Writer, asJSON bool, v any, text func(w io.Writer)) error {
	if asJSON {
		return printJSON(w, v)
	}
	text(w)
	return nil
}
