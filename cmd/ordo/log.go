package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/archive"
	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

func newLogCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Seal ranges of a chain into archive files, and drop archived entries from the database",
		Long: `A chain's oldest entries can leave the database without breaking it: ` + "`ordo log archive`" + ` writes a
range to plain files (entries with payloads, a checkpoint signed at the range's end, the tlog tiles),
` + "`ordo verify --archive DIR...`" + ` verifies archives offline and joins them to the database, and --drop
(or ` + "`ordo log drop`" + ` later) removes the archived entries once the archive verifies. docs/audit.md,
"Sealing and archiving", says what the database can and cannot prove afterwards.`,
	}
	cmd.AddCommand(newLogArchiveCommand(g), newLogDropCommand(g))
	return cmd
}

func newLogArchiveCommand(g *globalFlags) *cobra.Command {
	var tenant, partition, before, out, keyFile string
	var drop bool
	cmd := &cobra.Command{
		Use:     "archive",
		Example: "  ordo log archive --tenant acme --before 100000 --out /archive/acme-0 --key node.key\n  ordo log archive --tenant acme --before 2026-11-01T00:00:00Z --out /archive/acme-1 --key node.key --drop",
		Short:   "Write the next range of a chain (from where its last archive ends) to an archive directory",
		Long: `archive writes the entries of one chain from where its previous archive ended (its genesis for the
first) to --before, a chain_pos (the entries before it) or an RFC 3339 time (the entries enqueued before
it, by t_hlc), into a new directory: manifest.json, entries.jsonl, checkpoint (signed at the range's end
with --key, unless one of that size is stored) and tile/... . The chain must verify over the range and the
checkpointer must have hashed it. With --drop, the archive is read back, verified, and its entries dropped
from the database with the state of their jobs, which must all have finished.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" || before == "" || out == "" {
				return errors.New("--tenant, --before and --out are required")
			}
			pos, at, err := archive.ParseBefore(before)
			if err != nil {
				return err
			}
			key, err := readPrivateKey(keyFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, as, err := g.openAudit(ctx, true)
			if err != nil {
				return err
			}
			defer db.Close()
			k := chain.Key{TenantID: tenant, PartitionKey: partition}
			m, err := archive.Write(ctx, archive.WriteParams{Store: as, Key: key, Chain: k, Before: pos, BeforeTime: at, Dir: out, Now: time.Now()})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "archived %s/%q chain_pos %d..%d (%d entries) to %s: root %s at size %d\n",
				tenant, partition, m.StartPos, m.EndPos-1, m.EndPos-m.StartPos, out, m.Root, m.EndPos)
			if !drop {
				return nil
			}
			return dropArchive(cmd, as, out, key.Public(), w)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&partition, "partition", "", "partition (default: the default partition)")
	cmd.Flags().StringVar(&before, "before", "", "end of the range: a chain_pos, or an RFC 3339 time (required)")
	cmd.Flags().StringVar(&out, "out", "", "the archive directory to create; it must not exist or be empty (required)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the log's private key file (from `ordo keygen`), to sign the checkpoint at the range's end")
	cmd.Flags().BoolVar(&drop, "drop", false, "once the archive verifies, drop its entries from the database")
	return cmd
}

func newLogDropCommand(g *globalFlags) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:     "drop DIR",
		Example: "  ordo log drop /archive/acme-0 --key node.pub",
		Short:   "Drop the entries of an archive written earlier from the database, once it verifies",
		Long: `drop reads the archive back, verifies it (its entries, its signed checkpoint, its join to the archive
before it), checks that the database recorded that range and holds those very entries, and removes them
from scheduler_log with the state of their jobs, which must all have finished. Archives are dropped in
chain order.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return errors.New("--key: the log's public key file is required")
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			db, as, err := g.openAudit(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer db.Close()
			return dropArchive(cmd, as, args[0], key, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the log's public key file (required)")
	return cmd
}

func dropArchive(cmd *cobra.Command, as driver.AuditStore, dir string, key *audit.PublicKey, w io.Writer) error {
	res, err := archive.Drop(cmd.Context(), as, dir, key, time.Now())
	if err != nil {
		return err
	}
	how := ""
	if res.PartitionsDropped > 0 {
		how = fmt.Sprintf(" (%d partitions dropped whole)", res.PartitionsDropped)
	}
	fmt.Fprintf(w, "dropped %d entries and %d finished jobs' state of %s from the database%s\n", res.Entries, res.Jobs, dir, how)
	return nil
}
