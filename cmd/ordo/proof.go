package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

func newProofCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "proof",
		Example: "  ordo proof checkpoint --sign --key node.key --tenant acme -o acme.ckpt\n  ordo proof inclusion --job JOB_ID -o job.proof\n  ordo proof check job.proof --key node.pub --checkpoint acme.ckpt",
		Short:   "Signed checkpoints, and inclusion and consistency proofs checkable offline",
		Long: `Each chain is an RFC 6962 Merkle tree over its entries (leaf: the entry's link). The checkpointer signs
its size and root (a C2SP signed note). An auditor keeps checkpoints, asks for proofs, and checks them with
the public key alone: "proof check" needs no database. See docs/audit.md.

inclusion, consistency, and checkpoint without --sign only read: a SQLite --db whose file does not exist, a
database without ordo's schema, or one whose schema is behind this binary (migrations pending) is an error (exit 2),
and nothing is created or migrated; ordo migrate does that. checkpoint --sign writes checkpoints, and migrates a
database it finds behind first.`,
	}
	cmd.AddCommand(newProofCheckpointCommand(g), newProofInclusionCommand(g), newProofConsistencyCommand(g), newProofCheckCommand())
	return cmd
}

func writeOut(cmd *cobra.Command, path string, b []byte) error {
	if path == "" || path == "-" {
		_, err := cmd.OutOrStdout().Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// writeProof writes the proof prove makes from the configured database's
// audit store to path (see writeOut), as the proof file format's JSON.
func writeProof(cmd *cobra.Command, g *globalFlags, path string, prove func(context.Context, driver.AuditStore) (*audit.Proof, error)) error {
	ctx := cmd.Context()
	db, as, err := g.openAudit(ctx, false)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := prove(ctx, as)
	if err != nil {
		return err
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	return writeOut(cmd, path, append(b, '\n'))
}

func newProofCheckpointCommand(g *globalFlags) *cobra.Command {
	var tenant, partition, keyFile, out string
	var sign bool
	cmd := &cobra.Command{
		Use:     "checkpoint",
		Example: "  ordo proof checkpoint --tenant acme -o acme.ckpt\n  ordo proof checkpoint --sign --key node.key --tenant acme --partition eu",
		Short:   "Print a chain's latest signed checkpoint (with --sign, run the checkpointer first)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if !sign && tenant == "" {
				return errors.New("--tenant is required (or --sign to checkpoint every chain)")
			}
			var key *audit.PrivateKey
			if sign {
				var err error
				if key, err = readPrivateKey(keyFile); err != nil {
					return err
				}
			}
			// Only --sign writes (checkpoints).
			db, as, err := g.openAudit(ctx, sign)
			if err != nil {
				return err
			}
			defer db.Close()
			if sign {
				node, err := g.nodeID()
				if err != nil {
					return err
				}
				cp := &audit.Checkpointer{Store: as, Key: key, Holder: node, Leader: db}
				res, err := cp.RunOnce(ctx)
				if err != nil {
					return err
				}
				if !res.Led {
					return errors.New("another node holds the checkpointer lease; try again later")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "hashed %d entries, signed %d checkpoints\n", res.Leaves, len(res.Checkpoints))
				for _, k := range res.ChainsFailed {
					fmt.Fprintf(cmd.ErrOrStderr(), "chain %s/%q: new entries do not follow the hashed history; not signed (run ordo verify)\n", k.TenantID, k.PartitionKey)
				}
				if tenant == "" {
					return nil
				}
			}
			cps, err := as.Checkpoints(ctx, chain.Key{TenantID: tenant, PartitionKey: partition}, 1)
			if err != nil {
				return err
			}
			if len(cps) == 0 {
				return fmt.Errorf("chain %s/%q has no checkpoint yet", tenant, partition)
			}
			// With the witnesses' cosignatures, as ordo serve serves it.
			msg, err := audit.WithCosignatures(ctx, audit.CosignatureStoreOf(as), cps[0])
			if err != nil {
				return err
			}
			return writeOut(cmd, out, msg)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the chain's tenant")
	cmd.Flags().StringVar(&partition, "partition", "", "the chain's partition (default: the default partition)")
	cmd.Flags().BoolVar(&sign, "sign", false, "bring every chain's tree up to date and sign checkpoints first (needs --key)")
	cmd.Flags().StringVar(&keyFile, "key", "", "private key file, for --sign")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the checkpoint to this file (default: standard output)")
	return cmd
}

func newProofInclusionCommand(g *globalFlags) *cobra.Command {
	var job, out string
	cmd := &cobra.Command{
		Use:     "inclusion",
		Example: "  ordo proof inclusion --job 0156a452-0000-5000-8000-000000000000 -o job.proof",
		Short:   "Prove that a job is in its chain, against the chain's latest checkpoint",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := uuid.Parse(job)
			if err != nil {
				return fmt.Errorf("--job: %w", err)
			}
			return writeProof(cmd, g, out, func(ctx context.Context, as driver.AuditStore) (*audit.Proof, error) {
				return audit.ProveInclusion(ctx, as, driver.JobRef{JobID: id})
			})
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "job id (required)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the proof to this file (default: standard output)")
	return cmd
}

func newProofConsistencyCommand(g *globalFlags) *cobra.Command {
	var tenant, partition, out string
	var from, to int64
	cmd := &cobra.Command{
		Use:     "consistency",
		Example: "  ordo proof consistency --tenant acme --from 100 --to 250 -o grow.proof",
		Short:   "Prove that a chain's tree of size --from is a prefix of its checkpoint of size --to",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenant == "" || from < 1 {
				return errors.New("--tenant and --from (the size of the checkpoint you hold) are required")
			}
			return writeProof(cmd, g, out, func(ctx context.Context, as driver.AuditStore) (*audit.Proof, error) {
				return audit.ProveConsistency(ctx, as, chain.Key{TenantID: tenant, PartitionKey: partition}, from, to)
			})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the chain's tenant (required)")
	cmd.Flags().StringVar(&partition, "partition", "", "the chain's partition (default: the default partition)")
	cmd.Flags().Int64Var(&from, "from", 0, "the older tree size (required)")
	cmd.Flags().Int64Var(&to, "to", 0, "the newer tree size, a checkpoint's (default: the latest checkpoint)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the proof to this file (default: standard output)")
	return cmd
}

func newProofCheckCommand() *cobra.Command {
	var keyFile string
	var checkpoints []string
	var asJSON bool
	var witnesses witnessFlags
	cmd := &cobra.Command{
		Use:     "check PROOF-FILE",
		Example: "  ordo proof check job.proof --key node.pub\n  ordo proof check grow.proof --key node.pub --checkpoint old.ckpt",
		Short:   "Check a proof offline, with the public key (and checkpoints you kept); no database",
		Long: `With --witness-key, the proof's checkpoint must also carry at least --min-witnesses (default 1) valid
cosignatures by those witness keys (docs/audit.md, "Witnesses").

Exit status: 0 when the proof holds, 1 when it does not, 2 on error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return errors.New("--key: the public key file is required")
			}
			needWitnesses, err := witnesses.parse(cmd)
			if err != nil {
				return err
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			trusted, err := readFiles(checkpoints)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := audit.ParseProof(b)
			if err != nil {
				return err
			}
			res, err := audit.CheckProof(p, key, trusted...)
			if err != nil {
				return err
			}
			err = printResult(cmd.OutOrStdout(), asJSON, res, func(out io.Writer) {
				for _, n := range res.Notes {
					fmt.Fprintln(out, n)
				}
				if res.Valid {
					fmt.Fprintf(out, "%s proof OK\n", res.Type)
				} else {
					fmt.Fprintf(out, "%s proof FAILED: %s\n", res.Type, res.Problem)
				}
			})
			if err != nil {
				return err
			}
			if !res.Valid {
				return &exitError{code: 1, err: fmt.Errorf("the %s proof does not hold: %s", res.Type, res.Problem)}
			}
			if needWitnesses {
				if err := witnesses.check(cmd.ErrOrStderr(), fmt.Sprintf("the proof's checkpoint (%s size %d)", res.Origin, res.Size), []byte(p.Checkpoint)); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			return nil
		},
	}
	witnesses.register(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "public key file (required)")
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "a signed checkpoint you kept (file; repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
