package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
)

func newKeygenCommand(g *globalFlags) *cobra.Command {
	var name, out string
	var force bool
	cmd := &cobra.Command{
		Use:     "keygen",
		Example: "  ordo keygen --out node\n  ordo keygen --name scheduler-east-1 --out /etc/ordo/node",
		Short:   "Create an Ed25519 key pair for signing checkpoints and batch snapshots",
		Long: `keygen writes PREFIX.key (the private key, mode 0600: keep it on the node that signs) and
PREFIX.pub (the public key: give it to auditors; it alone verifies checkpoints, snapshots and proofs).
Both are one line in the signed-note key format (docs/audit.md):

  PRIVATE+KEY+<name>+<hash>+<base64>     <name>+<hash>+<base64>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				n, err := g.nodeID()
				if err != nil {
					return fmt.Errorf("--name: %w", err)
				}
				name = n
			}
			priv, pub, err := audit.GenerateKey(rand.Reader, name)
			if err != nil {
				return err
			}
			keyPath, pubPath := out+".key", out+".pub"
			if !force {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s exists; not overwriting it (use --force, or another --out)", p)
					} else if !errors.Is(err, os.ErrNotExist) {
						return err
					}
				}
			}
			if err := os.WriteFile(keyPath, []byte(priv+"\n"), 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pubPath, []byte(pub+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s (keep it secret)\npublic key:  %s\n%s\n", keyPath, pubPath, pub)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "key name, shown in signatures (default: the node id)")
	cmd.Flags().StringVar(&out, "out", "ordo", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}
