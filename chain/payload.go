package chain

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/gowebpki/jcs"
)

// ErrInvalidPayload is wrapped by every error that refuses a payload.
var ErrInvalidPayload = errors.New("chain: invalid payload")

// MaxPayloadDepth is how deep arrays and objects may nest in a payload:
// SQLite's JSON functions refuse deeper documents, so a limit of one
// backend is made the limit of both, and a payload either backend
// stores, the other stores too.
const MaxPayloadDepth = 1000

// Canonicalize returns the RFC 8785 (JSON Canonicalization Scheme) form of a
// JSON payload: no insignificant whitespace, object members sorted by their
// UTF-16 code units, numbers as ECMAScript prints IEEE 754 doubles, strings
// with the minimal JSON escapes. Two payloads that mean the same JSON value
// canonicalize to the same bytes, which is what makes payload hashes and job
// ids independent of how a client happened to format its JSON.
//
// The payload may be any JSON value. Canonicalize refuses, with an error
// wrapping ErrInvalidPayload: empty or whitespace-only input, anything that is
// not RFC 8259 JSON, data after the value, duplicate object member names
// (RFC 8785 section 3.1 requires this; otherwise {"a":1,"a":2} would have no
// defined meaning), invalid UTF-8, lone surrogates and numbers outside the
// range of a double, and arrays and objects nested deeper than
// MaxPayloadDepth. Numbers are read as doubles (I-JSON), so integers beyond
// 2^53 lose precision: a payload that needs them exact must carry them as
// strings.
func Canonicalize(payload []byte) ([]byte, error) {
	c := canonicalizers.Get().(*Canonicalizer)
	defer canonicalizers.Put(c)
	out, err := c.Canonicalize(payload)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(out), nil
}

var canonicalizers = sync.Pool{New: func() any { return new(Canonicalizer) }}

// Canonicalize is chain.Canonicalize into c's buffer: the result is valid
// until c's next call.
func (c *Canonicalizer) Canonicalize(payload []byte) ([]byte, error) {
	if out, ok := c.fast(payload); ok {
		return out, nil
	}
	return canonicalizeJCS(payload)
}

// canonicalizeJCS is the general implementation, which the fast path
// must agree with.
func canonicalizeJCS(payload []byte) ([]byte, error) {
	if len(payload) == 0 {
		return nil, &invalidError{ErrInvalidPayload, "payload", "empty input; a payload must be a JSON value such as {} or null"}
	}
	if d := nesting(payload); d > MaxPayloadDepth {
		return nil, &invalidError{ErrInvalidPayload, "payload", fmt.Sprintf("arrays and objects nest %d deep; at most %d", d, MaxPayloadDepth)}
	}
	out, err := jcs.Transform(payload)
	if err != nil {
		return nil, &invalidError{ErrInvalidPayload, "payload", err.Error()}
	}
	return out, nil
}

// nesting is the deepest nesting of arrays and objects in s, outside
// strings (for text that may not be valid JSON: it only counts).
func nesting(s []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// PayloadHash returns SHA-256 of the canonical form of payload.
func PayloadHash(payload []byte) (Hash, error) {
	canonical, err := Canonicalize(payload)
	if err != nil {
		return Hash{}, err
	}
	return sha256.Sum256(canonical), nil
}
