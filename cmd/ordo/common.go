package main

import (
	"context"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/store"
)

// loadConfig reads the configuration every command shares: the --config
// file (or $ORDO_CONFIG), the environment (Scheduler__..., Ordo__...,
// ORDO_DATABASE_URL), then --db and --node. needNode makes an unusable
// host name an error (commands that stamp timestamps need a node id).
func (g *globalFlags) loadConfig(needNode bool) (*config.Config, error) {
	src := config.ForCLI(g.config, g.db, g.node)
	src.NodeOptional = !needNode
	return config.Load(src)
}

// databaseURL is the configured database: --db, else the configuration,
// else the embedded default.
func (g *globalFlags) databaseURL() (string, error) {
	cfg, err := g.loadConfig(false)
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
	cfg, err := g.loadConfig(true)
	if err != nil {
		return "", err
	}
	return cfg.Ordo.NodeId, nil
}

// openMigrated opens the database and applies pending migrations, which is
// what every command that reads or writes jobs needs first.
func (g *globalFlags) openMigrated(ctx context.Context) (store.DB, error) {
	url, err := g.databaseURL()
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
