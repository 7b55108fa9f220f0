package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 14: --force leaves a private key that only its owner can read,
// whatever the file it replaced allowed, and never writes through a
// symbolic link.
func TestKeygenForce(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "node")
	if err := os.WriteFile(prefix+".key", []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prefix+".key", 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if out, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", prefix, "--force"); code != 0 {
		t.Fatalf("keygen --force: %d %s", code, out)
	}
	fi, err := os.Stat(prefix + ".key")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key after --force over a 0644 file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(prefix + ".key"); !strings.HasPrefix(string(b), "PRIVATE+KEY+node-a+") {
		t.Fatalf("private key file holds %q", b)
	}

	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "linked")
	if err := os.Symlink(target, link+".key"); err != nil {
		t.Fatal(err)
	}
	if out, code := runAuditCLI(t, "keygen", "--name", "node-a", "--out", link, "--force"); code != 2 {
		t.Fatalf("keygen --force onto a symbolic link: exit %d %s; want 2", code, out)
	}
	if b, _ := os.ReadFile(target); string(b) != "not a key\n" {
		t.Fatalf("the link's target was written: %q", b)
	}
	if _, err := os.Lstat(link + ".pub"); !os.IsNotExist(err) {
		t.Fatalf("a public key was written beside the refused link: %v", err)
	}
}
