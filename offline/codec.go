package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/ordo-sched/ordo/audit"
)

// Encode writes b as a bundle file: its JSON, or with key, a DSSE
// envelope (payload type PayloadType) around it.
func Encode(ctx context.Context, b *Bundle, key *audit.PrivateKey) ([]byte, error) {
	body, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("offline: encoding the bundle: %w", err)
	}
	if key == nil {
		return append(body, '\n'), nil
	}
	signer, err := dsse.NewEnvelopeSigner(key.DSSESigner())
	if err != nil {
		return nil, err
	}
	env, err := signer.SignPayload(ctx, PayloadType, body)
	if err != nil {
		return nil, fmt.Errorf("offline: signing the bundle: %w", err)
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Decoded is a bundle as read from a file, and who signed it.
type Decoded struct {
	Name     string // the file, for messages
	Bundle   *Bundle
	SignedBy string // the key id that signed it; "" when unsigned
}

// Decode reads a bundle file. A signed bundle must verify with one of
// keys (ErrSignature otherwise, also when no key is given); with
// requireSigned, an unsigned bundle is refused too.
func Decode(ctx context.Context, name string, data []byte, keys []*audit.PublicKey, requireSigned bool) (*Decoded, error) {
	var probe struct {
		PayloadType *string `json:"payloadType"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("offline: %s is not a bundle (not JSON): %w", name, err)
	}
	d := &Decoded{Name: name}
	body := data
	if probe.PayloadType != nil {
		var env dsse.Envelope
		if err := json.Unmarshal(data, &env); err != nil {
			return nil, fmt.Errorf("%w: %s is not a DSSE envelope: %w", ErrSignature, name, err)
		}
		if env.PayloadType != PayloadType {
			return nil, fmt.Errorf("%w: %s: payload type %q, want %q", ErrSignature, name, env.PayloadType, PayloadType)
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("%w: %s is signed; give the public key of its node (--key) to verify it", ErrSignature, name)
		}
		verifiers := make([]dsse.Verifier, len(keys))
		for i, k := range keys {
			verifiers[i] = k.DSSEVerifier()
		}
		v, err := dsse.NewMultiEnvelopeVerifier(1, verifiers...)
		if err != nil {
			return nil, err
		}
		accepted, err := v.Verify(ctx, &env)
		if err != nil || len(accepted) == 0 {
			return nil, fmt.Errorf("%w: %s: no signature verifies with the keys given: %v", ErrSignature, name, err)
		}
		d.SignedBy = accepted[0].KeyID
		if body, err = env.DecodeB64Payload(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrSignature, name, err)
		}
	} else if requireSigned {
		return nil, fmt.Errorf("%w: %s is not signed, and a signature is required", ErrSignature, name)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("offline: %s: not a bundle: %w", name, err)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("offline: %s: format %q, want %q", name, b.Format, Format)
	}
	if d.SignedBy != "" {
		// A node signs for itself: its key is named by its node id (`ordo
		// keygen --name NODE`), and every entry must be one its clock
		// stamped, so that one node's key cannot vouch for another's.
		signer, _, _ := strings.Cut(d.SignedBy, "+")
		for _, c := range b.Chains {
			for _, e := range c.Entries {
				if e.Node != signer {
					return nil, fmt.Errorf("%w: %s is signed by node %s's key but holds node %s's entry %s (chain %q)",
						ErrSignature, name, signer, e.Node, e.THLC, c.Partition)
				}
			}
		}
	}
	d.Bundle = &b
	return d, nil
}
