package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/store"
)

// databaseURL resolves --db, then $ORDO_DATABASE_URL, then the embedded
// default.
func (g *globalFlags) databaseURL() string {
	if g.db != "" {
		return g.db
	}
	if env := os.Getenv("ORDO_DATABASE_URL"); env != "" {
		return env
	}
	return store.DefaultURL
}

// nodeID resolves --node, else the host name, the stable identifier the
// guide suggests. A host name that is not a valid node id is an error
// rather than silently rewritten, so two nodes never end up with one id.
func (g *globalFlags) nodeID() (string, error) {
	if g.node != "" {
		return g.node, hlc.ValidateNodeID(g.node)
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("reading the host name for the node id: %w (set --node)", err)
	}
	host, _, _ = strings.Cut(host, ".")
	if err := hlc.ValidateNodeID(host); err != nil {
		return "", fmt.Errorf("host name %q is not a usable node id (%w); set --node", host, err)
	}
	return host, nil
}

// openMigrated opens the database and applies pending migrations, which is
// what every command that reads or writes jobs needs first.
func (g *globalFlags) openMigrated(ctx context.Context) (store.DB, error) {
	db, err := store.Open(ctx, g.databaseURL())
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
