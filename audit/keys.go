package audit

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"golang.org/x/mod/sumdb/note"
)

// Keys are Ed25519 keys written in the signed-note key format of
// golang.org/x/mod/sumdb/note (the format of the Go checksum database and
// of C2SP signed notes), one line each:
//
//	private: PRIVATE+KEY+<name>+<hash>+<base64(0x01 || 32-byte seed)>
//	public:  <name>+<hash>+<base64(0x01 || 32-byte public key)>
//
// <hash> is 8 hex digits: the first 4 bytes of SHA-256(name || "\n" ||
// 0x01 || public key), which signed notes carry with every signature. The
// same key signs checkpoints (as a signed note) and batch snapshots (as a
// DSSE envelope, whose keyid is <name>+<hash>); the public key alone
// verifies both.

// PrivateKey is a node's signing key.
type PrivateKey struct {
	name   string
	hash   uint32
	priv   ed25519.PrivateKey
	signer note.Signer
	text   string
}

// PublicKey verifies what a PrivateKey signed.
type PublicKey struct {
	name     string
	hash     uint32
	pub      ed25519.PublicKey
	verifier note.Verifier
	text     string
}

// GenerateKey creates a key pair named name (a node or service name; no
// '+' or spaces) from rand and returns both keys in their text forms.
func GenerateKey(rand io.Reader, name string) (private, public string, err error) {
	private, public, err = note.GenerateKey(rand, name)
	if err != nil {
		return "", "", fmt.Errorf("audit: generating key %q: %w", name, err)
	}
	return private, public, nil
}

// ParsePrivateKey reads a private key in the format above (surrounding
// white space ignored).
func ParsePrivateKey(text string) (*PrivateKey, error) {
	text = strings.TrimSpace(text)
	rest, ok := strings.CutPrefix(text, "PRIVATE+KEY+")
	if !ok {
		return nil, errors.New("audit: not a private key: it must start with PRIVATE+KEY+")
	}
	name, hash, key, err := splitKey(rest)
	if err != nil {
		return nil, fmt.Errorf("audit: private key: %w", err)
	}
	if len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return nil, errors.New("audit: private key: not an Ed25519 key (want algorithm 1 and a 32-byte seed)")
	}
	signer, err := note.NewSigner(text)
	if err != nil {
		return nil, fmt.Errorf("audit: private key: %w", err)
	}
	if signer.KeyHash() != hash {
		return nil, errors.New("audit: private key: its hash does not match its name and key")
	}
	return &PrivateKey{name: name, hash: hash, priv: ed25519.NewKeyFromSeed(key[1:]), signer: signer, text: text}, nil
}

// ParsePublicKey reads a public key in the format above.
func ParsePublicKey(text string) (*PublicKey, error) {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "PRIVATE+KEY+") {
		return nil, errors.New("audit: a private key was given where a public key is expected")
	}
	name, hash, key, err := splitKey(text)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	if len(key) != 1+ed25519.PublicKeySize || key[0] != 1 {
		return nil, errors.New("audit: public key: not an Ed25519 key (want algorithm 1 and a 32-byte key)")
	}
	v, err := note.NewVerifier(text)
	if err != nil {
		return nil, fmt.Errorf("audit: public key: %w", err)
	}
	return &PublicKey{name: name, hash: hash, pub: ed25519.PublicKey(key[1:]), verifier: v, text: text}, nil
}

func splitKey(s string) (name string, hash uint32, key []byte, err error) {
	// The base64 key may itself contain '+': split off name and hash only.
	parts := strings.SplitN(s, "+", 3)
	if len(parts) != 3 || parts[0] == "" {
		return "", 0, nil, errors.New("want <name>+<hash>+<key>")
	}
	h, err := strconv.ParseUint(parts[1], 16, 32)
	if err != nil || len(parts[1]) != 8 {
		return "", 0, nil, errors.New("the key hash must be 8 hex digits")
	}
	key, err = base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return "", 0, nil, errors.New("the key is not base64")
	}
	return parts[0], uint32(h), key, nil
}

// Name returns the key's name.
func (k *PrivateKey) Name() string { return k.name }

// KeyID returns <name>+<hash>, which identifies the key in signatures.
func (k *PrivateKey) KeyID() string { return keyID(k.name, k.hash) }

// Public returns the matching public key.
func (k *PrivateKey) Public() *PublicKey {
	pub := k.priv.Public().(ed25519.PublicKey)
	text, _ := note.NewEd25519VerifierKey(k.name, pub)
	p, err := ParsePublicKey(text)
	if err != nil {
		panic("audit: deriving a public key: " + err.Error())
	}
	return p
}

// String returns the private key's text form; keep it secret.
func (k *PrivateKey) String() string { return k.text }

// NoteSigner signs notes (checkpoints).
func (k *PrivateKey) NoteSigner() note.Signer { return k.signer }

// Name returns the key's name.
func (k *PublicKey) Name() string { return k.name }

// KeyID returns <name>+<hash>.
func (k *PublicKey) KeyID() string { return keyID(k.name, k.hash) }

// String returns the public key's text form.
func (k *PublicKey) String() string { return k.text }

// NoteVerifier verifies notes (checkpoints).
func (k *PublicKey) NoteVerifier() note.Verifier { return k.verifier }

func keyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// dsseSigner and dsseVerifier adapt the keys to the DSSE library.
type dsseSigner struct{ k *PrivateKey }

func (s dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return ed25519.Sign(s.k.priv, data), nil
}
func (s dsseSigner) KeyID() (string, error) { return s.k.KeyID(), nil }

type dsseVerifier struct{ k *PublicKey }

func (v dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(v.k.pub, data, sig) {
		return errors.New("ed25519: invalid signature")
	}
	return nil
}
func (v dsseVerifier) KeyID() (string, error)   { return v.k.KeyID(), nil }
func (v dsseVerifier) Public() crypto.PublicKey { return v.k.pub }

// DSSESigner signs DSSE envelopes with k (offline bundles, as batch
// snapshots are signed).
func (k *PrivateKey) DSSESigner() dsse.Signer { return dsseSigner{k} }

// DSSEVerifier verifies DSSE envelopes signed with k's private key.
func (k *PublicKey) DSSEVerifier() dsse.Verifier { return dsseVerifier{k} }
