// Command ordo is the command-line interface of the ordo job queue: it
// migrates the schema, shows the node's hybrid logical clock, and runs the
// demonstration of ordering and chaining on the embedded default database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries a specific exit code (e.g. 1 for "issues found",
// distinct from 2 for "could not check").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// run executes the CLI with args, so tests can drive it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ordo:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 2
	}
	return 0
}

type globalFlags struct {
	config string
	db     string
	node   string
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "ordo",
		Short: "A job queue whose order is deterministic across nodes and provable after the fact",
		Long: `ordo is a job queue and scheduler for Go services on PostgreSQL (or embedded SQLite).
Jobs are ordered by a Hybrid Logical Clock and linked into per-tenant hash chains,
so their order is the same on every node and can be verified afterwards.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.config, "config", "", "configuration file, YAML in the migration guide's shape (default $ORDO_CONFIG); see docs/configuration.md")
	root.PersistentFlags().StringVar(&g.db, "db", "", `database URL: postgres://... or sqlite:PATH (default $ORDO_DATABASE_URL, else "sqlite:ordo.db")`)
	root.PersistentFlags().StringVar(&g.node, "node", "", "this node's id (default: the host name)")
	root.AddCommand(
		newMigrateCommand(g),
		newClockCommand(g),
		newDemoCommand(g),
		newEnqueueCommand(g),
		newBackfillCommand(g),
		newRollbackDrainCommand(g),
		newVerifyCommand(g),
		newSnapshotCommand(g),
		newLogCommand(g),
		newProofCommand(g),
		newWitnessCommand(g),
		newKeygenCommand(g),
		newServeCommand(g),
		newJobsCommand(g),
		newQueuesCommand(g),
		newTokenCommand(g),
		newVersionCommand(),
	)
	return root
}
