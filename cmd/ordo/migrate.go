package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

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
	return cmd
}
