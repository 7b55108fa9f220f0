package chain

import (
	"errors"
	"strings"
	"testing"
)

func TestValidators(t *testing.T) {
	type check struct {
		value string
		ok    bool
		why   string // expected in the message when refused
	}
	for _, tc := range []struct {
		field    string
		validate func(string) error
		checks   []check
	}{
		{"tenant_id", ValidateTenantID, []check{
			{"acme", true, ""},
			{"0", true, ""},
			{"a.b_c-D9", true, ""},
			{strings.Repeat("t", 64), true, ""},
			{"", false, "empty"},
			{strings.Repeat("t", 65), false, "65 bytes"},
			{"-acme", false, "start with a letter or digit"},
			{".acme", false, "start with a letter or digit"},
			{"_acme", false, "start with a letter or digit"},
			{"ac me", false, "a space at byte 2"},
			{"acme/eu", false, "'/' at byte 4"},
			{"acme:x", false, "':'"},
			{"zürich", false, "byte 0xC3 at byte 1"},
			{"a\x00", false, "byte 0x00"},
		}},
		{"partition_key", ValidatePartitionKey, []check{
			{"", true, ""},
			{"customer/42", true, ""},
			{"Zürich · 東京 😀", true, ""},
			{"with space and \ufffd replacement char", true, ""},
			{"zero\u200dwidth joiner (format, not control)", true, ""},
			{strings.Repeat("p", 255), true, ""},
			{strings.Repeat("é", 127) + "x", true, ""},
			{strings.Repeat("p", 256), false, "256 bytes"},
			{strings.Repeat("é", 128), false, "256 bytes"},
			{"a\x00b", false, "NUL byte at byte 1"},
			{"tab\there", false, "U+0009"},
			{"new\nline", false, "U+000A"},
			{"del\x7f", false, "U+007F"},
			{"c1\u0085", false, "U+0085"},
			{"bad\xffutf8", false, "not valid UTF-8 (at byte 3)"},
			{"cut\xc3", false, "not valid UTF-8"},
			{"surrogate\xed\xa0\x80", false, "not valid UTF-8"},
		}},
		{"kind", ValidateKind, []check{
			{"email.send", true, ""},
			{"billing:invoice.v2", true, ""},
			{"A_b-c:d.e9", true, ""},
			{"k" + strings.Repeat("9", 127), true, ""},
			{"", false, "empty"},
			{"k" + strings.Repeat("9", 128), false, "129 bytes"},
			{"9lives", false, "start with a letter"},
			{":x", false, "start with a letter"},
			{"email send", false, "a space at byte 5"},
			{"email/send", false, "'/'"},
			{"émail", false, "start with a letter, not byte 0xC3"},
		}},
		{"idempotency_key", ValidateIdempotencyKey, []check{
			{"", true, ""},
			{"order-1234", true, ""},
			{"tabs\tand\ncontrols\x7f are fine", true, ""},
			{"Bestellung №7 ✓", true, ""},
			{strings.Repeat("k", 255), true, ""},
			{strings.Repeat("k", 256), false, "256 bytes"},
			{"a\x00", false, "NUL byte at byte 1"},
			{"\xff", false, "not valid UTF-8 (at byte 0)"},
		}},
		{"t_hlc", ValidateTHLC, []check{
			{"1704067200000-000042-scheduler-east-1", true, ""},
			{"x", true, ""}, // opaque here; the hlc package owns the format
			{"9999999999999-999999-" + strings.Repeat("n", 64), true, ""},
			{"", false, "empty"},
			{"9999999999999-999999-" + strings.Repeat("n", 65), false, "86 bytes"},
		}},
	} {
		for _, c := range tc.checks {
			err := tc.validate(c.value)
			if c.ok {
				if err != nil {
					t.Errorf("%s %q: unexpected error %v", tc.field, c.value, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s %q: accepted", tc.field, c.value)
				continue
			}
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("%s %q: error %v does not wrap ErrInvalidID", tc.field, c.value, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "chain: invalid "+tc.field+": ") || !strings.Contains(msg, c.why) {
				t.Errorf("%s %q: message %q should name the field and say %q", tc.field, c.value, msg, c.why)
			}
		}
	}
}
