package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
			for _, p := range []string{keyPath, pubPath} {
				switch fi, err := os.Lstat(p); {
				case err == nil && fi.Mode()&os.ModeSymlink != 0:
					return fmt.Errorf("%s is a symbolic link; not writing a key through it", p)
				case err == nil && !force:
					return fmt.Errorf("%s exists; not overwriting it (use --force, or another --out)", p)
				case err != nil && !errors.Is(err, os.ErrNotExist):
					return err
				}
			}
			if err := replaceFile(keyPath, []byte(priv+"\n"), 0o600); err != nil {
				return err
			}
			if err := replaceFile(pubPath, []byte(pub+"\n"), 0o644); err != nil {
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

// replaceFile writes data to a new file beside path with mode and renames
// it over path: the result has mode whatever an earlier file had (a
// private key overwritten with --force does not keep a 0644), and a
// symbolic link at path would be replaced, not followed.
func replaceFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
