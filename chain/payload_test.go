package chain

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestCanonicalizeRefuses(t *testing.T) {
	for _, tc := range []struct{ name, payload, inMessage string }{
		{"nil", "", "empty"},
		{"whitespace only", " \n\t", "EOF"},
		{"truncated object", `{"a":1`, "EOF"},
		{"truncated string", `{"a":"b`, "EOF"},
		{"truncated array", `[1,2`, "EOF"},
		{"trailing garbage", `{"a":1} x`, "terminated"},
		{"two values", `{}{}`, "terminated"},
		{"trailing bracket", `[1]]`, "terminated"},
		{"trailing NUL", "{}\x00", "terminated"},
		{"duplicate key", `{"a":1,"a":2}`, "Duplicate key"},
		{"duplicate key spelled with an escape", `{"a":1,"\u0061":2}`, "Duplicate key"},
		{"nested duplicate key", `{"x":[{"k":true,"k":false}]}`, "Duplicate key"},
		{"bare word", `hello`, "Invalid literal"},
		{"misspelled literal", `nul`, "Invalid literal"},
		{"single quotes", `{'a':1}`, ""},
		{"trailing comma", `[1,2,]`, ""},
		{"leading zero", `01`, "Invalid literal or number"},
		{"plus sign", `+1`, "Invalid literal or number"},
		{"hex number", `0x10`, "Invalid literal or number"},
		{"NaN", `NaN`, "Invalid literal"},
		{"number beyond double range", `1e400`, "out of range"},
		{"byte order mark", "\ufeff{}", "non-ASCII"},
		{"invalid UTF-8 in string", "\"\xff\"", "UTF-8"},
		{"lone high surrogate", `"\ud83d"`, ""},
		{"lone low surrogate", `"\ude00"`, "surrogate"},
		{"raw control character in string", "\"a\tb\"", ""},
		{"comment", `{"a":1 /* c */}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.payload))
			if err == nil {
				t.Fatalf("accepted %q as %q", tc.payload, out)
			}
			if !errors.Is(err, ErrInvalidPayload) {
				t.Errorf("error %v does not wrap ErrInvalidPayload", err)
			}
			if !strings.HasPrefix(err.Error(), "chain: invalid payload: ") || !strings.Contains(err.Error(), tc.inMessage) {
				t.Errorf("error %q should start with \"chain: invalid payload: \" and mention %q", err, tc.inMessage)
			}
			if _, err := PayloadHash([]byte(tc.payload)); !errors.Is(err, ErrInvalidPayload) {
				t.Errorf("PayloadHash: got %v, want ErrInvalidPayload", err)
			}
		})
	}
	if _, err := Canonicalize(nil); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("Canonicalize(nil): got %v, want ErrInvalidPayload", err)
	}
}

// TestCanonicalizeRFC8785 checks the examples printed in RFC 8785 itself, an
// oracle independent of both jcs and the test vectors.
func TestCanonicalizeRFC8785(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			"section 3.2.2",
			`{
			  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
			  "literals": [null, true, false]
			}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			"section 3.2.3",
			`{
			  "\u20ac": "Euro Sign",
			  "\r": "Carriage Return",
			  "\ufb33": "Hebrew Letter Dalet With Dagesh",
			  "1": "One",
			  "\ud83d\ude00": "Emoji: Grinning Face",
			  "\u0080": "Control",
			  "\u00f6": "Latin Small Letter O With Diaeresis"
			}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\"," +
				"\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
	} {
		got, err := Canonicalize([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}

	// Appendix B: IEEE 754 bit patterns and their canonical text.
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		in := strconv.FormatFloat(math.Float64frombits(tc.bits), 'g', -1, 64)
		got, err := Canonicalize([]byte(in))
		if err != nil {
			t.Fatalf("%016x (%s): %v", tc.bits, in, err)
		}
		if string(got) != tc.want {
			t.Errorf("%016x (%s): got %s, want %s", tc.bits, in, got, tc.want)
		}
	}
}

func TestPayloadHashIgnoresFormatting(t *testing.T) {
	variants := []string{
		`{"b":[1,2,{"y":null,"x":true}],"a":"é","c":4.5}`,
		`{"a":"é","b":[1,2,{"x":true,"y":null}],"c":4.5}`,
		" {\n\t\"c\" : 4.50 ,\r\n \"a\" : \"\\u00e9\" , \"b\" : [ 1 , 2.0 , { \"x\" : true , \"y\" : null } ] } \n",
		`{"c":45e-1,"b":[1E0,0.2e1,{"y":null,"x":true}],"a":"\u00E9"}`,
	}
	want, err := PayloadHash([]byte(variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	wantID := mustJobID(t, "acme", "", "k", "", want)
	for _, v := range variants[1:] {
		got, err := PayloadHash([]byte(v))
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if got != want {
			t.Errorf("%q hashes to %s, want %s", v, got, want)
		}
		if id := mustJobID(t, "acme", "", "k", "", got); id != wantID {
			t.Errorf("%q: job id %s, want %s", v, id, wantID)
		}
	}
	// Array order is significant, unlike member order.
	other, err := PayloadHash([]byte(`{"b":[2,1,{"y":null,"x":true}],"a":"é","c":4.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if other == want {
		t.Errorf("reordering an array must change the hash")
	}
}

// FuzzCanonicalize: no input panics, refusals wrap ErrInvalidPayload, and
// anything accepted canonicalizes to valid JSON that is its own canonical
// form and that a standard parser also accepts.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `0`, `-0`, `1e21`, `0.000001`, `1e-7`, `4.50`, `9007199254740993`,
		`{"b":1,"a":[true,false,null,"x"]}`, `"\ud83d\ude00\u0007"`, `{"\u20ac":1,"\ufb33":2,"😀":3}`,
		`{"a":1,"a":2}`, `{"a":1} x`, `[1,2`, "\"\xff\"", ` {"a" : [ 1 , 2 ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := Canonicalize(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("output %q of %q is not valid JSON", out, payload)
		}
		if !json.Valid(payload) {
			t.Fatalf("accepted %q, which encoding/json rejects", payload)
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical form %q of %q is refused: %v", out, payload, err)
		}
		if string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", payload, out, again)
		}
	})
}
