package driver

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits of a job's metadata (Prepared.Metadata): small enough to ride
// along every dequeue, large enough for a W3C trace context and baggage.
const (
	MaxMetadataKeys     = 32
	MaxMetadataKeyBytes = 128
	MaxMetadataBytes    = 8 << 10 // the whole object, encoded
)

// EncodeMetadata checks a job's metadata and encodes it as the metadata
// column holds it: a JSON object with sorted keys, or nil for none. A key
// is 1 to MaxMetadataKeyBytes printable ASCII characters without spaces;
// keys and values are valid UTF-8 without U+0000 (which PostgreSQL's
// jsonb refuses), so both backends store the same bytes.
func EncodeMetadata(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if len(m) > MaxMetadataKeys {
		return nil, fmt.Errorf("metadata has %d keys, at most %d allowed", len(m), MaxMetadataKeys)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || len(k) > MaxMetadataKeyBytes {
			return nil, fmt.Errorf("metadata key %q: want 1 to %d characters", k, MaxMetadataKeyBytes)
		}
		for _, c := range []byte(k) {
			if c <= ' ' || c >= 0x7f {
				return nil, fmt.Errorf("metadata key %q: only printable ASCII without spaces is allowed", k)
			}
		}
		v := m[k]
		if !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata %q: the value is not valid UTF-8", k)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("metadata %q: the value contains U+0000, which ordo does not store", k)
		}
	}
	b, err := json.Marshal(m) // sorts the keys
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if len(b) > MaxMetadataBytes {
		return nil, fmt.Errorf("metadata is %d bytes encoded, at most %d allowed", len(b), MaxMetadataBytes)
	}
	return b, nil
}

// DecodeMetadata reads a metadata column; NULL (nil or empty) is none.
func DecodeMetadata(stored []byte) (map[string]string, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal(stored, &m); err != nil {
		return nil, fmt.Errorf("metadata is not a JSON object of strings: %w", err)
	}
	return m, nil
}
