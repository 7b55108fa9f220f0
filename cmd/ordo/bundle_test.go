package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/internal/testdb"
)

// Issue 18: the operator's steps. A field node exports a signed bundle;
// the central database (PostgreSQL) imports it with the node's public key,
// once; the chain verifies; mistakes get exit 1 or 2 and a message that
// names them, and write nothing.
func TestExportImportCommands(t *testing.T) {
	dir := t.TempDir()
	field := "sqlite:" + filepath.Join(dir, "field.db")
	central := testdb.NewDatabase(t)
	key := filepath.Join(dir, "field-a")
	bundle := filepath.Join(dir, "acme.bundle")
	must := func(wantCode int, wantOut string, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, args...)
		if code != wantCode || !strings.Contains(out+errOut, wantOut) {
			t.Fatalf("ordo %s: exit %d, %s%s; want exit %d and %q", strings.Join(args, " "), code, out, errOut, wantCode, wantOut)
		}
		return out
	}
	must(0, "private key", "keygen", "--out", key, "--name", "field-a")
	for _, p := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
		must(0, "job_id", "enqueue", "--db", field, "--node", "field-a", "--enable-hlc-ordering", "--tenant", "acme", "--kind", "report", "--payload", p)
	}
	must(2, "no chain entries of tenant acmx", "jobs", "export", "--db", field, "--tenant", "acmx", "--out", bundle)
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Fatalf("a failed export left %s: %v", bundle, err)
	}
	must(0, "3 entries of 1 chains of tenant acme, signed by field-a+", "jobs", "export", "--db", field, "--tenant", "acme", "--out", bundle, "--sign", key+".key")

	importArgs := []string{"jobs", "import", bundle, "--db", central, "--node", "central", "--enable-hlc-ordering"}
	must(1, "is signed; give the public key of its node (--key)", importArgs...)
	must(0, "1 bundles, 3 entries verified", "jobs", "import", "--verify-only", bundle, "--key", key+".pub")
	must(0, "3 merged, 0 already here", append(importArgs, "--key", key+".pub")...)
	must(0, "0 merged, 3 already here", append(importArgs, "--key", key+".pub")...)
	must(0, "3 entries checked, 0 issues", "verify", "--db", central, "--tenant", "acme")

	// A tampered bundle: exit 1, the entry named, nothing merged.
	plain := filepath.Join(dir, "plain.bundle")
	must(0, "unsigned", "jobs", "export", "--db", field, "--tenant", "acme", "--out", plain)
	data, _ := os.ReadFile(plain)
	tampered := filepath.Join(dir, "tampered.bundle")
	os.WriteFile(tampered, []byte(strings.Replace(string(data), `"n": 2`, `"n": 20`, 1)), 0o644)
	other := testdb.NewDatabase(t)
	must(1, `chain "", entry 1`, "jobs", "import", tampered, "--db", other, "--node", "central", "--enable-hlc-ordering")
	must(2, "no chain entries", "jobs", "export", "--db", other, "--tenant", "acme", "--out", filepath.Join(dir, "x.bundle"))
	must(1, "not signed, and a signature is required", "jobs", "import", plain, "--require-signature", "--verify-only")
	must(1, "not signed, and a signature is required", "jobs", "import", plain, "--key", key+".pub", "--verify-only")
}
