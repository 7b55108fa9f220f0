package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/offline"
)

func newJobsExportCommand(g *globalFlags) *cobra.Command {
	var tenant, out, node, since, signKey string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a tenant's chain entries, with their jobs, as a bundle to merge into another database",
		Long: `Writes the chain entries of one tenant (every partition), with the jobs as they were enqueued and each
chain's latest signed checkpoint, as a bundle file: what a node cut off from the central database carries to it,
over the network or across an air gap, for ` + "`ordo jobs import`" + `. With --sign the bundle is a DSSE envelope
signed with that key (an ` + "`ordo keygen`" + ` private key); the importer checks it with the public half.

The database is only read. Exit status: 0 when the bundle was written; 2 on an error, also when nothing matches
(an empty bundle would only hide a typo). The file is written whole or not at all.

Format: docs/offline.md.`,
		Example: `  ordo jobs export --db sqlite:field.db --tenant acme --out acme-field-a.bundle --sign field-a.key
  ordo jobs export --db sqlite:field.db --tenant acme --node field-a --since 2026-03-01T00:00:00Z --out later.bundle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			after, err := sinceAsTHLC(since)
			if err != nil {
				return err
			}
			var key *audit.PrivateKey
			if signKey != "" {
				if key, err = readPrivateKey(signKey); err != nil {
					return err
				}
			}
			db, as, err := g.openAudit(ctx, false)
			if err != nil {
				return err
			}
			defer db.Close()
			b, err := offline.Export(ctx, as, offline.ExportParams{Tenant: tenant, Node: node, After: after, Now: time.Now()})
			if err != nil {
				return err
			}
			data, err := offline.Encode(ctx, b, key)
			if err != nil {
				return err
			}
			if err := replaceFile(out, data, 0o644); err != nil {
				return err
			}
			n := 0
			for _, c := range b.Chains {
				n += len(c.Entries)
			}
			signed := "unsigned"
			if key != nil {
				signed = "signed by " + key.KeyID()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries of %d chains of tenant %s, %s\n", out, n, len(b.Chains), tenant, signed)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant whose chains to export (required)")
	cmd.Flags().StringVar(&out, "out", "", "the bundle file to write (required)")
	cmd.Flags().StringVar(&node, "node", "", "only the entries this node stamped (node_id)")
	cmd.Flags().StringVar(&since, "since", "", "only entries after this t_hlc, or from this RFC 3339 time on")
	cmd.Flags().StringVar(&signKey, "sign", "", "sign the bundle (DSSE) with this private key file")
	_ = cmd.MarkFlagRequired("tenant")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// sinceAsTHLC turns --since into the t_hlc entries must sort after: a
// t_hlc as it is, an RFC 3339 time as the last timestamp of the
// millisecond before it (node ids never contain '~', which sorts after
// every character they may hold).
func sinceAsTHLC(since string) (string, error) {
	if since == "" {
		return "", nil
	}
	if t, err := hlc.Parse(since); err == nil {
		return t.String(), nil
	}
	at, err := time.Parse(time.RFC3339Nano, since)
	if err != nil {
		return "", fmt.Errorf("--since %q: want a t_hlc (e.g. 1767225600000-000000-node-a) or an RFC 3339 time", since)
	}
	ms := at.UnixMilli() - 1
	if ms < 0 || ms > hlc.MaxPhysical {
		return "", fmt.Errorf("--since %q: outside the times a t_hlc can carry", since)
	}
	return fmt.Sprintf("%013d-%06d-~", ms, hlc.MaxLogical), nil
}

func newJobsImportCommand(g *globalFlags) *cobra.Command {
	var hf hlcFlags
	var keys []string
	var requireSigned, verifyOnly, force bool
	cmd := &cobra.Command{
		Use:   "import BUNDLE...",
		Short: "Verify bundles from offline nodes and merge their entries into this database's chains",
		Long: `Verifies each bundle (its signature, and every entry: payload hash, job id, link, its predecessor where the
bundle holds it), then merges the entries of all of them into the chains here in one deterministic order,
(physical, counter, node) of their t_hlc, then job id: the same bundles give the same chains, byte for byte, in
any order on the command line and on any node. An entry whose job id is already here is dropped and counted. Each
merged entry keeps its source node, t_hlc, prev_link and link; one whose t_hlc is not after the tenant's latest
gets the next timestamp after it, naming its source node. This node's clock receives the bundles' timestamps, so
later enqueues follow them; one further ahead than MaxClockDriftMs refuses the import. Running it again adds
nothing.

A bundle with a bad entry is refused whole, nothing written, naming the first bad entry; --force takes, of each
chain with a bad entry, the entries before it. A signed bundle is checked with the --key files (a bad signature
is never forced) and must be the key of the node whose entries it holds (named by its node id, as
` + "`ordo keygen --name NODE`" + ` makes it); with --key, or --require-signature, unsigned bundles are refused.

Exit status: 0 when every bundle verified (and was merged); 1 when one was refused; 2 on an error.`,
		Example: `  ordo jobs import --db postgres://ordo@central/ordo acme-field-a.bundle acme-field-b.bundle --key field-a.pub --key field-b.pub
  ordo jobs import --verify-only *.bundle --key field-a.pub --require-signature`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var pubs []*audit.PublicKey
			for _, path := range keys {
				k, err := readPublicKey(path)
				if err != nil {
					return err
				}
				pubs = append(pubs, k)
			}
			// Keys given say whose bundles are trusted: an unsigned one is
			// then refused too.
			requireSigned = requireSigned || len(pubs) > 0
			var bundles []*offline.Decoded
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				d, err := offline.Decode(ctx, path, data, pubs, requireSigned)
				if errors.Is(err, offline.ErrSignature) {
					return &exitError{code: 1, err: err}
				}
				if err != nil {
					return err
				}
				bundles = append(bundles, d)
			}
			if verifyOnly {
				r, err := offline.Import(ctx, nil, bundles, offline.ImportOptions{VerifyOnly: true, Force: force})
				if err != nil {
					return refusal(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d bundles, %d entries verified\n", r.Bundles, r.Entries)
				return nil
			}
			opts, err := hf.resolve(g, cmd.Flags())
			if err != nil {
				return err
			}
			h, err := g.openQueue(ctx, opts)
			if err != nil {
				return err
			}
			defer h.Close()
			r, err := offline.Import(ctx, h.q, bundles, offline.ImportOptions{Force: force})
			if err != nil {
				return refusal(err)
			}
			for _, s := range r.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "forced: took the entries before %v\n", s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d bundles, %d entries: %d merged, %d already here\n", r.Bundles, r.Entries, r.Imported, r.Present)
			return nil
		},
	}
	hf.register(cmd.Flags())
	cmd.Flags().StringArrayVar(&keys, "key", nil, "public key file of a node whose signed bundles to accept (repeatable); unsigned bundles are then refused")
	cmd.Flags().BoolVar(&requireSigned, "require-signature", false, "refuse unsigned bundles")
	cmd.Flags().BoolVar(&verifyOnly, "verify-only", false, "verify the bundles and write nothing")
	cmd.Flags().BoolVar(&force, "force", false, "take, of each chain with a bad entry, the entries before it")
	return cmd
}

// refusal is exit status 1 for a refused bundle, 2 for anything else.
func refusal(err error) error {
	var bad *offline.EntryError
	if errors.As(err, &bad) {
		return &exitError{code: 1, err: err}
	}
	return err
}
