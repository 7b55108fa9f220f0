package hlc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxPhysical is the largest physical part the canonical form can carry
	// (13 decimal digits, Unix milliseconds up to the year 2286).
	MaxPhysical int64 = 9_999_999_999_999
	// MaxLogical is the largest logical counter the canonical form can carry
	// (6 decimal digits). A clock that would go past it moves its physical
	// part forward by one millisecond instead.
	MaxLogical uint32 = 999_999
	// MaxNodeIDLen bounds node ids so a canonical timestamp never exceeds
	// MaxTextLen bytes.
	MaxNodeIDLen = 64
	// MaxTextLen is the longest canonical text form: 13 + 1 + 6 + 1 + 64.
	MaxTextLen = 13 + 1 + 6 + 1 + MaxNodeIDLen

	physicalDigits = 13
	logicalDigits  = 6
)

// ErrInvalidTimestamp is wrapped by every parse error.
var ErrInvalidTimestamp = errors.New("hlc: invalid timestamp")

// ErrInvalidNodeID is wrapped by every node id validation error.
var ErrInvalidNodeID = errors.New("hlc: invalid node id")

// Timestamp is a point in hybrid logical time. Timestamps are totally
// ordered by Physical, then Logical, then Node compared as bytes, and the
// canonical text form (String) sorts as plain bytes in exactly that order,
// which is what lets PostgreSQL (COLLATE "C") and SQLite order them as text.
type Timestamp struct {
	Physical int64  // Unix milliseconds, UTC
	Logical  uint32 // events within the same millisecond
	Node     string // the node that issued it
}

// IsZero reports whether t is the zero Timestamp (never issued by a Clock).
func (t Timestamp) IsZero() bool {
	return t.Physical == 0 && t.Logical == 0 && t.Node == ""
}

// Compare returns -1, 0 or +1 as t is before, equal to or after u.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Physical < u.Physical:
		return -1
	case t.Physical > u.Physical:
		return 1
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return strings.Compare(t.Node, u.Node)
}

// Before reports whether t sorts strictly before u.
func (t Timestamp) Before(u Timestamp) bool { return t.Compare(u) < 0 }

// After reports whether t sorts strictly after u.
func (t Timestamp) After(u Timestamp) bool { return t.Compare(u) > 0 }

// String returns the canonical text form, e.g.
// "1704067200000-000042-scheduler-east-1".
func (t Timestamp) String() string {
	var buf [MaxTextLen]byte
	return string(t.AppendText(buf[:0]))
}

// AppendText appends the canonical text form to b. It allocates only if b
// lacks capacity, so hot paths can format into a stack buffer.
func (t Timestamp) AppendText(b []byte) []byte {
	b = appendPadded(b, uint64(t.Physical), physicalDigits)
	b = append(b, '-')
	b = appendPadded(b, uint64(t.Logical), logicalDigits)
	b = append(b, '-')
	return append(b, t.Node...)
}

// MarshalText implements encoding.TextMarshaler with the canonical form.
func (t Timestamp) MarshalText() ([]byte, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t.AppendText(make([]byte, 0, MaxTextLen)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the strict parser.
func (t *Timestamp) UnmarshalText(b []byte) error {
	ts, err := Parse(string(b))
	if err != nil {
		return err
	}
	*t = ts
	return nil
}

// Validate reports whether t can be written in canonical form.
func (t Timestamp) Validate() error {
	if t.Physical < 0 || t.Physical > MaxPhysical {
		return fmt.Errorf("%w: physical part %d outside 0..%d", ErrInvalidTimestamp, t.Physical, MaxPhysical)
	}
	if t.Logical > MaxLogical {
		return fmt.Errorf("%w: logical part %d above %d", ErrInvalidTimestamp, t.Logical, MaxLogical)
	}
	if err := ValidateNodeID(t.Node); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTimestamp, err)
	}
	return nil
}

func appendPadded(b []byte, v uint64, width int) []byte {
	var digits [20]byte
	i := len(digits)
	for v > 0 || i == len(digits) {
		i--
		digits[i] = byte('0' + v%10)
		v /= 10
	}
	for n := len(digits) - i; n < width; n++ {
		b = append(b, '0')
	}
	return append(b, digits[i:]...)
}

// ValidateNodeID checks that id is 1 to 64 characters of A-Z a-z 0-9 . _ -
// starting with a letter or digit. The restriction keeps node ids safe in
// file names, metric labels and the canonical text form.
func ValidateNodeID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidNodeID)
	}
	if len(id) > MaxNodeIDLen {
		return fmt.Errorf("%w: %q is %d characters, at most %d allowed", ErrInvalidNodeID, truncate(id), len(id), MaxNodeIDLen)
	}
	if !isAlnum(id[0]) {
		return fmt.Errorf("%w: %q must start with a letter or digit", ErrInvalidNodeID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w: %q has %q at position %d; allowed are A-Z a-z 0-9 . _ -", ErrInvalidNodeID, id, rune(c), i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Parse reads the canonical text form and nothing else: exactly 13 digits,
// a dash, exactly 6 digits, a dash, and a valid node id.
func Parse(s string) (Timestamp, error) {
	const prefix = physicalDigits + 1 + logicalDigits + 1
	if len(s) <= prefix || s[physicalDigits] != '-' || s[physicalDigits+1+logicalDigits] != '-' {
		return Timestamp{}, fmt.Errorf("%w: %q is not of the form PPPPPPPPPPPPP-LLLLLL-node", ErrInvalidTimestamp, truncate(s))
	}
	phys, logical, node := s[:physicalDigits], s[physicalDigits+1:prefix-1], s[prefix:]
	if !isDigits(phys) || !isDigits(logical) {
		return Timestamp{}, fmt.Errorf("%w: %q: physical and logical parts must be decimal digits", ErrInvalidTimestamp, truncate(s))
	}
	p, _ := strconv.ParseInt(phys, 10, 64)
	l, _ := strconv.ParseUint(logical, 10, 32)
	t := Timestamp{Physical: p, Logical: uint32(l), Node: node}
	if err := ValidateNodeID(node); err != nil {
		return Timestamp{}, fmt.Errorf("%w: %q: %w", ErrInvalidTimestamp, truncate(s), err)
	}
	return t, nil
}

// ParseUpstream reads the text forms found in the upstream system, for
// imports: "1704067200000-scheduler-east-1-000042" (physical, node,
// 6-digit counter; the older 16-digit physical variant is accepted too) and
// "1704067200000:42:scheduler-east-1". The canonical form is accepted as
// well, so an import can take a mix. None of the upstream forms sorts
// correctly as text, which is why ordo stores only the canonical form.
func ParseUpstream(s string) (Timestamp, error) {
	if t, err := Parse(s); err == nil {
		return t, nil
	}
	if strings.Contains(s, ":") {
		parts := strings.SplitN(s, ":", 3)
		if len(parts) != 3 || !isDigits(parts[0]) || !isDigits(parts[1]) || len(parts[1]) > logicalDigits {
			return Timestamp{}, fmt.Errorf("%w: %q is not of the form physical:logical:node", ErrInvalidTimestamp, truncate(s))
		}
		return build(s, parts[0], parts[1], parts[2])
	}
	first, last := strings.IndexByte(s, '-'), strings.LastIndexByte(s, '-')
	if first <= 0 || last <= first || len(s)-last-1 != logicalDigits {
		return Timestamp{}, fmt.Errorf("%w: %q is not of the form physical-node-NNNNNN", ErrInvalidTimestamp, truncate(s))
	}
	return build(s, s[:first], s[last+1:], s[first+1:last])
}

func build(s, phys, logical, node string) (Timestamp, error) {
	if !isDigits(phys) || !isDigits(logical) || len(phys) > 16 {
		return Timestamp{}, fmt.Errorf("%w: %q: physical and logical parts must be decimal digits", ErrInvalidTimestamp, truncate(s))
	}
	p, err := strconv.ParseInt(phys, 10, 64)
	if err != nil {
		return Timestamp{}, fmt.Errorf("%w: %q: %w", ErrInvalidTimestamp, truncate(s), err)
	}
	l, err := strconv.ParseUint(logical, 10, 32)
	if err != nil {
		return Timestamp{}, fmt.Errorf("%w: %q: %w", ErrInvalidTimestamp, truncate(s), err)
	}
	t := Timestamp{Physical: p, Logical: uint32(l), Node: node}
	if err := t.Validate(); err != nil {
		return Timestamp{}, fmt.Errorf("%q: %w", truncate(s), err)
	}
	return t, nil
}
