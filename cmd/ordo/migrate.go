package main

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/store"
)

func newMigrateCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the embedded schema migrations",
		Example: `  ordo migrate --db postgres://ordo@localhost/ordo
  ordo migrate --db sqlite:ordo.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withDB(cmd.Context(), func(db store.DB) error {
				applied, err := db.Migrate(cmd.Context())
				for _, a := range applied {
					fmt.Fprintf(cmd.OutOrStdout(), "applied %s (%s)\n", a.Name, a.Duration.Round(1e6))
				}
				if err != nil {
					return err
				}
				if len(applied) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "schema is up to date")
				}
				return nil
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List the embedded migrations and whether each is applied; changes nothing",
		Long: `Lists the migrations embedded in this binary and, for each, when it was applied or "pending".

It only reads, and writes nothing (not even ordo_schema_migrations, the table ordo migrate records versions in):
on a database without ordo's schema, an empty SQLite file among them, every migration is listed as pending, exit
status 0. A SQLite --db whose file does not exist is an error (exit 2), and is not created.`,
		Example: `  ordo migrate status --db sqlite:ordo.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := g.databaseURL()
			if err != nil {
				return err
			}
			states, err := schemaStatus(cmd.Context(), url)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "VERSION\tNAME\tAPPLIED")
			for _, s := range states {
				at := "pending"
				if s.Applied {
					at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(w, "%d\t%s\t%s\n", s.Version, s.Name, at)
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(newMigratePrintCommand())
	return cmd
}

// newMigratePrintCommand prints the embedded migrations' SQL, to review
// what migrate runs or to apply it with other tooling (it records no
// version, so ordo does not see such a schema as migrated).
func newMigratePrintCommand() *cobra.Command {
	var dialect string
	var down bool
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the SQL of every embedded migration (the Up parts in order, or with --down the Down parts in reverse), for your own tooling",
		Long: `Prints the SQL of the embedded migrations of --dialect, each after a comment line naming its file: the Up
parts in order (what ordo migrate applies), or with --down the Down parts in reverse order, which undo them,
the newest first. Neither reads nor writes a database.

Applied with other tooling, neither records anything in ordo_schema_migrations, the table where ordo migrate
records versions: ordo does not see a schema made from the Up parts as migrated, and after the Down parts are
applied to a database that ordo migrate migrated, that table still lists every migration as applied (drop it,
or delete its rows, before migrating again). On PostgreSQL the Down parts drop every table and index of the
scheduler schema but not the schema itself, which the first migration creates only if it does not exist.`,
		Example: `  ordo migrate print --dialect postgres > ordo-schema.sql
  ordo migrate print --dialect postgres --down > ordo-schema-down.sql
  ordo migrate print --dialect sqlite`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fsys, err := migrations.Files(migrations.Dialect(dialect))
			if err != nil {
				return err
			}
			names, err := fs.Glob(fsys, "*.sql")
			if err != nil {
				return err
			}
			slices.Sort(names)
			if down {
				// A migration's Down undoes it on the schema the later
				// ones left, so the newest is undone first.
				slices.Reverse(names)
			}
			out := cmd.OutOrStdout()
			for _, name := range names {
				b, err := fs.ReadFile(fsys, name)
				if err != nil {
					return err
				}
				up, downSQL, found := strings.Cut(string(b), "-- +goose Down")
				switch {
				case !down:
					fmt.Fprintf(out, "-- %s\n%s\n", name, strings.TrimSpace(up)+"\n")
				case !found:
					return fmt.Errorf("migration %s has no Down part: it cannot be undone by printed SQL", name)
				default:
					fmt.Fprintf(out, "-- %s (down)\n%s\n", name, strings.TrimSpace(downSQL)+"\n")
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dialect, "dialect", string(migrations.Postgres), "postgres or sqlite")
	cmd.Flags().BoolVar(&down, "down", false, "print the Down parts, newest migration first, instead of the Up parts")
	return cmd
}
