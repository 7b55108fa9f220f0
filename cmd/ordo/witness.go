package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// witnessFlags are --witness-key and --min-witnesses, of ordo verify and
// ordo proof check: the checkpoint relied on must carry at least min valid
// cosignatures by the given witness keys.
type witnessFlags struct {
	keyTexts []string
	min      int
	keys     []*audit.WitnessKey
}

func (f *witnessFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.keyTexts, "witness-key", nil, "a witness's verifier key <name>+<hash>+<base64>, or a file holding one (repeatable): the checkpoint must be cosigned by --min-witnesses of them")
	cmd.Flags().IntVar(&f.min, "min-witnesses", 0, "how many valid cosignatures by the --witness-key keys the checkpoint needs (default with --witness-key: 1)")
}

// parse reads the keys; it reports whether witnesses are required at all.
func (f *witnessFlags) parse(cmd *cobra.Command) (bool, error) {
	if len(f.keyTexts) == 0 {
		if cmd.Flags().Changed("min-witnesses") {
			return false, errors.New("--min-witnesses needs --witness-key: the keys whose cosignatures count")
		}
		return false, nil
	}
	if !cmd.Flags().Changed("min-witnesses") {
		f.min = 1
	}
	if f.min < 1 {
		return false, fmt.Errorf("--min-witnesses %d: want at least 1", f.min)
	}
	seen := map[string]bool{}
	for _, t := range f.keyTexts {
		text := t
		if _, err := audit.ParseWitnessKey(t); err != nil {
			if b, ferr := os.ReadFile(t); ferr == nil {
				text = strings.TrimSpace(string(b))
			}
		}
		k, err := audit.ParseWitnessKey(text)
		if err != nil {
			return false, fmt.Errorf("--witness-key: %w", err)
		}
		if !seen[k.KeyID()] {
			seen[k.KeyID()] = true
			f.keys = append(f.keys, k)
		}
	}
	return true, nil
}

// check counts the cosignatures on the signed note msg (what names it in
// messages) and fails when fewer than min are valid.
func (f *witnessFlags) check(out io.Writer, what string, msg []byte) error {
	n, problems := audit.CountCosignatures(msg, f.keys)
	fmt.Fprintf(out, "%s: %d of %d witness keys cosigned it (need %d)\n", what, n, len(f.keys), f.min)
	if n >= f.min {
		return nil
	}
	why := ""
	if len(problems) > 0 {
		why = ": " + strings.Join(problems, "; ")
	}
	if f.min > len(f.keys) {
		why += fmt.Sprintf(" (only %d --witness-key given)", len(f.keys))
	}
	return fmt.Errorf("%s has %d valid witness cosignatures, fewer than --min-witnesses %d%s", what, n, f.min, why)
}

// checkStoredCheckpoints checks the latest stored checkpoint of every
// chain verified, with its stored cosignatures.
func (f *witnessFlags) checkStoredCheckpoints(ctx context.Context, out io.Writer, as driver.AuditStore, chains []chain.Key) error {
	var failed []string
	for _, k := range chains {
		what := fmt.Sprintf("checkpoint of chain %s/%q", k.TenantID, k.PartitionKey)
		cps, err := as.Checkpoints(ctx, k, 1)
		if err != nil {
			return err
		}
		if len(cps) == 0 {
			failed = append(failed, what+": none signed yet, so none witnessed")
			fmt.Fprintf(out, "%s: none signed yet\n", what)
			continue
		}
		msg, err := audit.WithCosignatures(ctx, audit.CosignatureStoreOf(as), cps[0])
		if err != nil {
			return err
		}
		if err := f.check(out, fmt.Sprintf("%s (size %d)", what, cps[0].Size), msg); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return &exitError{code: 1, err: errors.New(strings.Join(failed, "\n"))}
	}
	return nil
}

func newWitnessCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "witness",
		Short: "What a C2SP tlog-witness (litewitness) needs to cosign ordo's checkpoints",
		Long: `A witness knows a log by its origin and verifies the log's signature with a key whose name is that origin
(C2SP tlog-witness). ordo's origins are ordo/<tenant>/<escaped partition>; with Ordo:Audit:Witnesses set, the
checkpointer signs each checkpoint with its node key and, with the same private key, under the origin's name.
See docs/audit.md, "Witnesses".`,
	}
	cmd.AddCommand(newWitnessLogKeyCommand())
	return cmd
}

func newWitnessLogKeyCommand() *cobra.Command {
	var keyFile, tenant, partition string
	var asCommands bool
	cmd := &cobra.Command{
		Use:     "log-key",
		Example: "  ordo witness log-key --key node.pub --tenant acme\n  ordo witness log-key --key node.pub --tenant acme --partition eu --witnessctl",
		Short:   "Print a chain's origin and the verifier key to register with witnessctl add-log and add-key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile == "" || tenant == "" {
				return errors.New("--key (the checkpointer's public key file) and --tenant are required")
			}
			if err := chain.ValidateTenantID(tenant); err != nil {
				return fmt.Errorf("--tenant: %w", err)
			}
			if err := chain.ValidatePartitionKey(partition); err != nil {
				return fmt.Errorf("--partition: %w", err)
			}
			key, err := readPublicKey(keyFile)
			if err != nil {
				return err
			}
			origin := audit.Origin(chain.Key{TenantID: tenant, PartitionKey: partition})
			vkey, err := key.OriginVerifierKey(origin)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asCommands {
				fmt.Fprintf(out, "witnessctl add-log -db litewitness.db -origin '%s'\n", origin)
				fmt.Fprintf(out, "witnessctl add-key -db litewitness.db -origin '%s' -key '%s'\n", origin, vkey)
				return nil
			}
			fmt.Fprintf(out, "origin %s\nkey %s\n", origin, vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the checkpointer's public (or private) key file (required)")
	cmd.Flags().StringVar(&tenant, "tenant", "", "the chain's tenant (required)")
	cmd.Flags().StringVar(&partition, "partition", "", "the chain's partition (default: the default partition)")
	cmd.Flags().BoolVar(&asCommands, "witnessctl", false, "print the witnessctl commands that register the log")
	return cmd
}
