package main

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/store"
)

func newSnapshotCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshot",
		Example: "  ordo snapshot create --tenant acme --key node.key\n  ordo snapshot list --tenant acme\n  ordo snapshot verify --key node.pub",
		Short:   "Create, list and verify signed batch snapshots of chain ranges",
	}
	cmd.AddCommand(newSnapshotCreateCommand(g), newSnapshotListCommand(g), newSnapshotVerifyCommand(g))
	return cmd
}

func newSnapshotCreateCommand(g *globalFlags) *cobra.Command {
	var tenant, partition, keyFile string
	var from, to int64
	cmd := &cobra.Command{
		Use:     "create",
		Example: "  ordo snapshot create --tenant acme --key node.key\n  ordo snapshot create --tenant acme --partition eu --from 0 --to 99 --key node.key",
		Short:   "Sign a snapshot of a range of one chain (default: the whole chain)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" {
				return errors.New("--tenant is required")
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
			s := &audit.Snapshotter{Store: as, Key: key}
			snap, err := s.Create(ctx, chain.Key{TenantID: tenant, PartitionKey: partition}, from, to)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s: %s/%q chain_pos %d..%d (%d entries), merkle root %s, signed by %s\n",
				snap.BatchID, tenant, partition, snap.FromPos, snap.ToPos, snap.EntryCount, snap.MerkleRoot, snap.KeyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&partition, "partition", "", "partition (default: the default partition)")
	cmd.Flags().Int64Var(&from, "from", 0, "first chain_pos")
	cmd.Flags().Int64Var(&to, "to", -1, "last chain_pos (default: the chain's last entry)")
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file (from `ordo keygen`)")
	return cmd
}

type snapshotFlags struct {
	tenant, partition, id string
}

func (f *snapshotFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.tenant, "tenant", "", "only this tenant's snapshots")
	cmd.Flags().StringVar(&f.partition, "partition", "", "only this partition's snapshots")
	cmd.Flags().StringVar(&f.id, "id", "", "only the snapshot with this batch id")
}

func (f *snapshotFlags) filter(cmd *cobra.Command) (driver.SnapshotFilter, error) {
	var sf driver.SnapshotFilter
	sf.TenantID = f.tenant
	if cmd.Flags().Changed("partition") {
		p := f.partition
		sf.PartitionKey = &p
	}
	if f.id != "" {
		id, err := uuid.Parse(f.id)
		if err != nil {
			return sf, fmt.Errorf("--id: %w", err)
		}
		sf.BatchID = id
	}
	return sf, nil
}

func newSnapshotListCommand(g *globalFlags) *cobra.Command {
	var f snapshotFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Example: "  ordo snapshot list --tenant acme",
		Short:   "List batch snapshots",
		Long:    "Lists the batch snapshots the flags select, as text or JSON.\n\n" + readOnlyHelp,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, _, snaps, err := f.load(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			if asJSON {
				type row struct {
					BatchID      uuid.UUID `json:"batch_id"`
					TenantID     string    `json:"tenant_id"`
					PartitionKey string    `json:"partition_key"`
					SnapshotHLC  string    `json:"snapshot_hlc"`
					FromChainPos int64     `json:"from_chain_pos"`
					ToChainPos   int64     `json:"to_chain_pos"`
					EntryCount   int64     `json:"entry_count"`
					MerkleRoot   string    `json:"merkle_root"`
					KeyID        string    `json:"key_id"`
				}
				rows := []row{}
				for _, s := range snaps {
					rows = append(rows, row{s.BatchID, s.Key.TenantID, s.Key.PartitionKey, s.SnapshotHLC, s.FromPos, s.ToPos, s.EntryCount, s.MerkleRoot.String(), s.KeyID})
				}
				return printJSON(out, rows)
			}
			for _, s := range snaps {
				fmt.Fprintf(out, "%s  %s/%q  chain_pos %d..%d  %d entries  root %s  at %s  key %s\n",
					s.BatchID, s.Key.TenantID, s.Key.PartitionKey, s.FromPos, s.ToPos, s.EntryCount, s.MerkleRoot, s.SnapshotHLC, s.KeyID)
			}
			fmt.Fprintf(out, "%d snapshots\n", len(snaps))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSnapshotVerifyCommand(g *globalFlags) *cobra.Command {
	var f snapshotFlags
	var keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "verify",
		Example: "  ordo snapshot verify --key node.pub",
		Short:   "Check snapshots: signature, signed statement, and that the range is still intact",
		Long:    "Exit status: 0 when every snapshot checked holds, 1 when one does not, 2 on error.\n\n" + readOnlyHelp,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" {
				return errors.New("--key: the public key file is required")
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, as, snaps, err := f.load(cmd, g)
			if err != nil {
				return err
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			checks := []*audit.SnapshotCheck{}
			bad := 0
			for i := range snaps {
				c, err := audit.VerifySnapshot(ctx, as, &snaps[i], key)
				if err != nil {
					return err
				}
				checks = append(checks, c)
				if !c.Valid {
					bad++
				}
				if !asJSON {
					state := "ok"
					if !c.Valid {
						state = "FAILED"
					}
					fmt.Fprintf(out, "%s  %s/%q  chain_pos %d..%d: %s\n", c.BatchID, snaps[i].Key.TenantID, snaps[i].Key.PartitionKey, snaps[i].FromPos, snaps[i].ToPos, state)
					for _, p := range c.Problems {
						fmt.Fprintln(out, "  "+p)
					}
				}
			}
			if asJSON {
				if err := printJSON(out, checks); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "%d snapshots checked, %d failed\n", len(checks), bad)
			}
			if bad > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d snapshots failed", bad, len(checks))}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "public key file (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// load opens the database and lists the snapshots the flags select.
func (f *snapshotFlags) load(cmd *cobra.Command, g *globalFlags) (store.DB, driver.AuditStore, []driver.Snapshot, error) {
	sf, err := f.filter(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	db, as, err := g.openAudit(cmd.Context(), false)
	if err != nil {
		return nil, nil, nil, err
	}
	snaps, err := as.Snapshots(cmd.Context(), sf)
	if err != nil {
		_ = db.Close()
		return nil, nil, nil, err
	}
	return db, as, snaps, nil
}
