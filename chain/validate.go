package chain

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidID is wrapped by every error that refuses a tenant id, partition
// key, kind, idempotency key or t_hlc. The message names the field.
var ErrInvalidID = errors.New("chain: invalid identifier")

// Limits in bytes. maxTHLCLen is the longest canonical HLC text:
// 13 digits, '-', 6 digits, '-', a node id of at most 64 characters.
const (
	maxTenantIDLen       = 64
	maxPartitionKeyLen   = 255
	maxKindLen           = 128
	maxIdempotencyKeyLen = 255
	maxTHLCLen           = 13 + 1 + 6 + 1 + 64
)

// invalidError names the field so that a caller can show a user what to fix,
// and unwraps to a sentinel so that code can tell bad input from failures.
type invalidError struct {
	sentinel error
	field    string
	reason   string
}

func (e *invalidError) Error() string { return "chain: invalid " + e.field + ": " + e.reason }
func (e *invalidError) Unwrap() error { return e.sentinel }

func invalidID(field, format string, args ...any) error {
	return &invalidError{ErrInvalidID, field, fmt.Sprintf(format, args...)}
}

// ValidateTenantID accepts 1 to 64 characters of [A-Za-z0-9._-] starting with
// a letter or digit. The narrow alphabet keeps tenant ids safe in URLs, file
// names, log lines and metric labels, and free of the NUL that separates the
// parts of a job id name.
func ValidateTenantID(tenantID string) error {
	return validateName("tenant_id", tenantID, maxTenantIDLen, false, "._-")
}

// ValidatePartitionKey accepts the empty string (the default partition) or up
// to 255 bytes of valid UTF-8 without control characters (Unicode category Cc:
// U+0000-U+001F, U+007F-U+009F). Partition keys are often customer-supplied
// names, so any printable text is allowed; NUL is excluded because it
// separates the parts of a job id name, and other control characters because
// they have no business in a key that appears in logs and dashboards.
func ValidatePartitionKey(partitionKey string) error {
	return validateText("partition_key", partitionKey, maxPartitionKeyLen, false)
}

// ValidateKind accepts 1 to 128 characters of [A-Za-z0-9._:-] starting with a
// letter, which leaves room for namespaced kinds such as "billing:invoice.v2".
func ValidateKind(kind string) error {
	return validateName("kind", kind, maxKindLen, true, "._:-")
}

// validateName accepts 1 to maxLen bytes of ASCII letters, digits and the
// punctuation in punct, starting with a letter, or unless letterFirst a
// letter or digit: the rules of the identifiers that name things.
func validateName(field, s string, maxLen int, letterFirst bool, punct string) error {
	if s == "" {
		return invalidID(field, "must not be empty")
	}
	if len(s) > maxLen {
		return invalidID(field, "is %d bytes long; the limit is %d", len(s), maxLen)
	}
	if letterFirst && !isASCIILetter(s[0]) {
		return invalidID(field, "must start with a letter, not %s", describeByte(s[0]))
	}
	if !letterFirst && !isASCIIAlnum(s[0]) {
		return invalidID(field, "must start with a letter or digit, not %s", describeByte(s[0]))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isASCIIAlnum(c) && strings.IndexByte(punct, c) < 0 {
			allowed := strings.Join(strings.Split(punct, ""), " ")
			return invalidID(field, "has %s at byte %d; only A-Z a-z 0-9 %s are allowed", describeByte(c), i, allowed)
		}
	}
	return nil
}

// ValidateIdempotencyKey accepts the empty string, which means "no key given",
// or up to 255 bytes of valid UTF-8 without NUL. Keys come from callers'
// own systems (order numbers, message ids), so nothing else is restricted.
func ValidateIdempotencyKey(idempotencyKey string) error {
	return validateText("idempotency_key", idempotencyKey, maxIdempotencyKeyLen, true)
}

// validateText accepts up to maxLen bytes of valid UTF-8 without NUL, and
// without other control characters unless controlsAllowed: the rules of
// the free-text identifiers.
func validateText(field, s string, maxLen int, controlsAllowed bool) error {
	if len(s) > maxLen {
		return invalidID(field, "is %d bytes long; the limit is %d", len(s), maxLen)
	}
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validRuneAt(s, i):
			return invalidID(field, "is not valid UTF-8 (at byte %d)", i)
		case r == 0:
			return invalidID(field, "contains a NUL byte at byte %d", i)
		case !controlsAllowed && unicode.IsControl(r):
			return invalidID(field, "contains control character U+%04X at byte %d", r, i)
		}
	}
	return nil
}

// ValidateTHLC accepts a t_hlc of 1 to 85 bytes. The chain treats t_hlc as
// opaque bytes (its format belongs to the hlc package); it only needs a
// bound so that a link input fits a fixed buffer, and a non-empty value so
// that an entry cannot silently lack its ordering key.
func ValidateTHLC(tHLC string) error {
	const field = "t_hlc"
	if tHLC == "" {
		return invalidID(field, "must not be empty")
	}
	if len(tHLC) > maxTHLCLen {
		return invalidID(field, "is %d bytes long; the limit is %d", len(tHLC), maxTHLCLen)
	}
	return nil
}

// validRuneAt reports whether s holds a well-formed encoding at byte i. It is
// needed because range yields U+FFFD both for a broken byte and for a
// correctly encoded U+FFFD, which is legitimate text.
func validRuneAt(s string, i int) bool {
	r, size := utf8.DecodeRuneInString(s[i:])
	return r != utf8.RuneError || size == 3
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isASCIIAlnum(c byte) bool  { return isASCIILetter(c) || c >= '0' && c <= '9' }

// describeByte renders an offending byte readably without echoing
// non-printable or partial UTF-8 bytes into an error message.
func describeByte(c byte) string {
	if c == ' ' {
		return "a space"
	}
	if c >= 0x21 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02X", c)
}
