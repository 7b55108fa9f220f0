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
		Use:     "status",
		Short:   "List the embedded migrations and whether each is applied",
		Example: `  ordo migrate status --db sqlite:ordo.db`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withDB(cmd.Context(), func(db store.DB) error {
				states, err := db.MigrationStatus(cmd.Context())
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
			})
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
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print the SQL of every embedded migration (the Up part), in order, for your own tooling",
		Example: `  ordo migrate print --dialect postgres > ordo-schema.sql
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
			out := cmd.OutOrStdout()
			for _, name := range names {
				b, err := fs.ReadFile(fsys, name)
				if err != nil {
					return err
				}
				up, _, _ := strings.Cut(string(b), "-- +goose Down")
				fmt.Fprintf(out, "-- %s\n%s\n", name, strings.TrimSpace(up)+"\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dialect, "dialect", string(migrations.Postgres), "postgres or sqlite")
	return cmd
}
