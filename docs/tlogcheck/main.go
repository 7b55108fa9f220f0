// Command tlogcheck is an auditor's check of one ordo chain, served as a
// C2SP tlog-tiles log by `ordo serve`, with a standard tlog client
// (filippo.io/torchwood) and no ordo code: it fetches the checkpoint,
// verifies its signature with ordo's public key, proves the chosen entries
// into it from the tiles and, given a checkpoint kept earlier, proves that
// the log only grew since. Any other tlog-tiles client can do the same;
// docs/audit.md, "Checking ordo with standard tools", says what it checks.
//
//	go run ./docs/tlogcheck -log https://ordo.example/v1/tenants/acme/tlog/ \
//	    -key node-a.pub -origin ordo/acme/ -entry 0 -entry 41 -old kept.note -save new.note
//
// The bearer token, when the tenant's tiles are not public, is read from
// ORDO_TOKEN. Exit status: 0 all checks passed, 1 a check failed, 2 an
// error (bad flags, the log unreachable).
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv("ORDO_TOKEN"), os.Stdout, os.Stderr))
}

// failed is a check that did not pass (exit 1), as opposed to an error.
type failed struct{ error }

func run(ctx context.Context, args []string, token string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tlogcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logURL := fs.String("log", "", "the log's prefix URL, e.g. https://ordo.example/v1/tenants/acme/tlog/ (required)")
	keyFile := fs.String("key", "", "ordo's public key file, a signed-note verifier key (`ordo keygen` writes NAME.pub) (required)")
	origin := fs.String("origin", "", "the checkpoint origin the log must have, e.g. ordo/acme/ (required)")
	old := fs.String("old", "", "a checkpoint kept earlier: prove the log only grew since")
	save := fs.String("save", "", "write the verified checkpoint to this file, to keep")
	var entries []int64
	fs.Func("entry", "an entry (chain_pos) to prove and print; repeatable", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a chain_pos, got %q", s)
		}
		entries = append(entries, n)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *logURL == "" || *keyFile == "" || *origin == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "tlogcheck: -log, -key and -origin are required")
		return 2
	}
	err := check(ctx, *logURL, *keyFile, *origin, *old, *save, token, entries, stdout)
	var f failed
	switch {
	case errors.As(err, &f):
		fmt.Fprintln(stdout, "FAILED:", err)
		return 1
	case err != nil:
		fmt.Fprintln(stderr, "tlogcheck:", err)
		return 2
	}
	fmt.Fprintln(stdout, "OK")
	return 0
}

func check(ctx context.Context, logURL, keyFile, origin, oldFile, saveFile, token string, entries []int64, out io.Writer) error {
	keyText, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(strings.TrimSpace(string(keyText)))
	if err != nil {
		return fmt.Errorf("%s: %w", keyFile, err)
	}
	var rt http.RoundTripper = http.DefaultTransport
	if token != "" {
		rt = withToken{token, rt}
	}
	fetcher, err := torchwood.NewTileFetcher(logURL, torchwood.WithHTTPClient(&http.Client{Transport: rt, Timeout: time.Minute}))
	if err != nil {
		return err
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		return err
	}

	msg, err := fetcher.ReadEndpoint(ctx, "checkpoint")
	if err != nil {
		return err
	}
	cp, err := open(msg, verifier, origin)
	if err != nil {
		return failed{fmt.Errorf("the log's checkpoint: %w", err)}
	}
	fmt.Fprintf(out, "checkpoint %s: size %d, root %x, signed by %s\n", cp.Origin, cp.N, cp.Hash[:], verifier.Name())

	if oldFile != "" {
		oldMsg, err := os.ReadFile(oldFile)
		if err != nil {
			return err
		}
		oldCP, err := open(oldMsg, verifier, origin)
		if err != nil {
			return failed{fmt.Errorf("%s: %w", oldFile, err)}
		}
		if oldCP.N > cp.N {
			return failed{fmt.Errorf("the log's tree (size %d) is smaller than your checkpoint's (size %d): truncated", cp.N, oldCP.N)}
		}
		proof, err := tlog.ProveTree(cp.N, oldCP.N, torchwood.TileHashReaderWithContext(ctx, cp.Tree, fetcher))
		if err == nil {
			err = tlog.CheckTree(proof, cp.N, cp.Hash, oldCP.N, oldCP.Hash)
		}
		if err != nil {
			return failed{fmt.Errorf("the tree of size %d in %s is not a prefix of the log's tree of size %d (history rewritten): %w", oldCP.N, oldFile, cp.N, err)}
		}
		fmt.Fprintf(out, "consistent with %s (size %d)\n", oldFile, oldCP.N)
	}

	for _, i := range entries {
		entry, _, err := client.Entry(ctx, cp.Tree, i)
		if err != nil {
			return failed{fmt.Errorf("entry %d: %w", i, err)}
		}
		fmt.Fprintf(out, "entry %d: link %s, included\n", i, hex.EncodeToString(entry))
	}
	if saveFile != "" {
		if err := os.WriteFile(saveFile, msg, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// open verifies a checkpoint's signature and origin.
func open(msg []byte, v note.Verifier, origin string) (torchwood.Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return torchwood.Checkpoint{}, err
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return torchwood.Checkpoint{}, err
	}
	if cp.Origin != origin {
		return torchwood.Checkpoint{}, fmt.Errorf("origin %q, want %q", cp.Origin, origin)
	}
	return cp, nil
}

// withToken sends a bearer token with every request.
type withToken struct {
	token string
	next  http.RoundTripper
}

func (w withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+w.token)
	return w.next.RoundTrip(r)
}
