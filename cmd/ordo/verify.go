package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/archive"
	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/store"
)

// openAudit opens the database and its audit store. A command that only
// reads (verify, snapshot list|verify, proof inclusion|consistency|
// checkpoint without --sign) opens it as openReadOnly does; one that
// writes (snapshot create, proof checkpoint --sign) migrates it first,
// but still does not create a SQLite file that is not there.
func (g *globalFlags) openAudit(ctx context.Context, write bool) (store.DB, driver.AuditStore, error) {
	url, err := g.databaseURL()
	if err != nil {
		return nil, nil, err
	}
	var db store.DB
	if write {
		if err := mustExist(url); err != nil {
			return nil, nil, err
		}
		db, err = store.OpenMigrated(ctx, url)
	} else {
		db, err = openReadOnly(ctx, url)
	}
	if err != nil {
		return nil, nil, err
	}
	return db, db.AuditStore(), nil
}

// readPublicKey reads a public key file; a private key file is accepted
// too (its public half is used).
func readPublicKey(path string) (*audit.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.TrimSpace(string(b)), "PRIVATE+KEY+") {
		k, err := audit.ParsePrivateKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k.Public(), nil
	}
	k, err := audit.ParsePublicKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readPrivateKey(path string) (*audit.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("--key: a private key file is required (create one with `ordo keygen`)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := audit.ParsePrivateKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readFiles(paths []string) ([][]byte, error) {
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func newVerifyCommand(g *globalFlags) *cobra.Command {
	var tenant, partition, keyFile string
	var all, asJSON bool
	var checkpoints, archives []string
	var maxIssues int
	var order orderFlags
	var witnesses witnessFlags
	cmd := &cobra.Command{
		Use:     "verify",
		Example: "  ordo verify --tenant acme\n  ordo verify --db postgres://ordo@localhost/ordo --all --json\n  ordo verify --tenant acme --key node.pub --checkpoint acme.ckpt\n  ordo verify --order --tenant acme --strict orders",
		Short:   "Verify the hash chains: links, order, payloads, heads, duplicates, signed checkpoints",
		Long: `verify streams every entry of the chosen chains and checks them (docs/chain-spec.md section 8,
docs/audit.md): link, predecessor, t_hlc order, genesis, payload hash, job id, duplicates, chain_heads,
gaps, the stored Merkle tree, and the latest signed checkpoint (with --key, its signature too; with --checkpoint, checkpoints
you kept yourself). With --witness-key, the latest checkpoint of every chain verified must also carry at least
--min-witnesses (default 1) valid cosignatures by those witness keys (docs/audit.md, "Witnesses"). With --archive,
archive directories written by ` + "`ordo log archive`" + ` are verified offline and the chain joined to them from its genesis;
without, a chain whose oldest entries were dropped is joined to the database's record of them (docs/audit.md,
"Sealing and archiving").

Exit status: 0 when every chain is valid, 1 when issues were found (each is printed) or nothing matched (no
chain entries for --tenant/--partition), 2 on error.

` + orderHelp + `

` + readOnlyHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if all == (tenant != "") {
				return errors.New("give --tenant T (optionally --partition P) or --all")
			}
			if cmd.Flags().Changed("partition") && all {
				return errors.New("--partition needs --tenant, not --all")
			}
			ctx := cmd.Context()
			if err := order.check(); err != nil {
				return err
			}
			needWitnesses, err := witnesses.parse(cmd)
			if err != nil {
				return err
			}
			if order.order {
				if needWitnesses {
					return errors.New("--order compares start order with t_hlc order; it takes no --witness-key")
				}
				if cmd.Flags().Changed("partition") || keyFile != "" || len(checkpoints) > 0 {
					return errors.New("--order compares start order with t_hlc order; it takes no --partition, --key or --checkpoint")
				}
				return g.runOrder(ctx, cmd.OutOrStdout(), &order, tenant, all, asJSON)
			}
			v := &audit.Verifier{MaxIssues: maxIssues}
			if keyFile != "" {
				k, err := readPublicKey(keyFile)
				if err != nil {
					return err
				}
				v.Key = k
			}
			if v.Checkpoints, err = readFiles(checkpoints); err != nil {
				return err
			}
			if len(v.Checkpoints) > 0 && v.Key == nil {
				return errors.New("--checkpoint needs --key to verify the checkpoints' signatures")
			}
			if len(archives) > 0 {
				if v.Key == nil {
					return errors.New("--archive needs --key to verify the archives' checkpoints")
				}
				var opened []*archive.Archive
				for _, dir := range archives {
					a, err := archive.Open(dir)
					if err != nil {
						return &exitError{code: 1, err: err}
					}
					opened = append(opened, a)
				}
				if v.Archived, err = archive.VerifyAll(opened, v.Key); err != nil {
					if errors.Is(err, archive.ErrInvalid) {
						return &exitError{code: 1, err: err}
					}
					return err
				}
			}
			db, as, err := g.openAudit(ctx, false)
			if err != nil {
				return err
			}
			defer db.Close()
			v.Store = as
			var res *audit.Result
			switch {
			case all:
				res, err = v.VerifyAll(ctx)
			case cmd.Flags().Changed("partition"):
				res, err = v.Verify(ctx, tenant, partition)
			default:
				res, err = v.Verify(ctx, tenant)
			}
			if err != nil {
				return err
			}
			err = printResult(cmd.OutOrStdout(), asJSON, res, func(out io.Writer) {
				for _, c := range res.Chains {
					state := "valid"
					if !c.Valid {
						state = fmt.Sprintf("INVALID (%d issues)", c.IssueCount)
					}
					archived := ""
					if c.ArchivedEntries > 0 {
						from := "the database's record"
						if v.Archived[chain.Key{TenantID: c.TenantID, PartitionKey: c.PartitionKey}] != nil {
							from = "archive files"
						}
						archived = fmt.Sprintf(" after %d archived (joined to %s)", c.ArchivedEntries, from)
					}
					fmt.Fprintf(out, "chain %s/%q: %d entries%s, %d checkpoints checked: %s\n", c.TenantID, c.PartitionKey, c.EntriesChecked, archived, c.CheckpointsChecked, state)
				}
				for _, is := range res.Issues {
					fmt.Fprintln(out, "  "+is.String())
				}
				if res.IssueCount > int64(len(res.Issues)) {
					fmt.Fprintf(out, "  ... and %d more issues (raise --max-issues)\n", res.IssueCount-int64(len(res.Issues)))
				}
				fmt.Fprintf(out, "%d chains, %d entries checked, %d issues\n", len(res.Chains), res.EntriesChecked, res.IssueCount)
			})
			if err != nil {
				return err
			}
			if !res.Valid {
				return &exitError{code: 1, err: fmt.Errorf("verification found %d issues", res.IssueCount)}
			}
			// Nothing checked is not a pass: an auditor's typo in --tenant
			// or --partition, or the wrong database, must not exit 0.
			var archivedEntries int64
			for _, c := range res.Chains {
				archivedEntries += c.ArchivedEntries
			}
			if res.EntriesChecked+archivedEntries == 0 {
				return &exitError{code: 1, err: errors.New("nothing was verified: no chain entries match (check --tenant, --partition and --db)")}
			}
			if needWitnesses {
				var chains []chain.Key
				for _, c := range res.Chains {
					chains = append(chains, chain.Key{TenantID: c.TenantID, PartitionKey: c.PartitionKey})
				}
				return witnesses.checkStoredCheckpoints(ctx, cmd.ErrOrStderr(), as, chains)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "verify this tenant's chains")
	cmd.Flags().StringVar(&partition, "partition", "", "verify only this partition's chain (default: every partition of the tenant)")
	cmd.Flags().BoolVar(&all, "all", false, "verify every chain of every tenant")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&keyFile, "key", "", "public key file that verifies checkpoint signatures")
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "a signed checkpoint you kept (file; repeatable); needs --key")
	cmd.Flags().StringArrayVar(&archives, "archive", nil, "an archive directory written by `ordo log archive` (repeatable): verified offline, and the chain joined to it from its genesis; needs --key")
	witnesses.register(cmd)
	cmd.Flags().IntVar(&maxIssues, "max-issues", 1000, "issues listed per chain (all are counted)")
	cmd.Flags().BoolVar(&order.order, "order", false, "compare the order jobs were first started in with their t_hlc order, instead of verifying the chains")
	cmd.Flags().StringArrayVar(&order.strict, "strict", nil, "with --order: a partition dequeued with strict partitions, which must have no inversion (repeatable)")
	cmd.Flags().BoolVar(&order.strictAll, "strict-all", false, "with --order: every partition is dequeued with strict partitions")
	return cmd
}
