// Command genvectors writes docs/chain-test-vectors.json from the cases
// below, using package chain to compute the expected values.
//
// The file is only trustworthy because docs/verify-chain-vectors.mjs, an
// independent implementation of docs/chain-spec.md, checks every value in it;
// run it after regenerating. Regenerate with `go generate ./chain`.
//
// The output must not change unless a case is added or edited: every rule it
// exercises is frozen.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/chain/internal/vectorfile"
)

// testCase is one vector's input. after names an earlier case whose link
// becomes this case's prev_link; empty means a genesis entry.
type testCase struct {
	name           string
	after          string
	description    string
	tenantID       string
	partitionKey   string
	kind           string
	idempotencyKey *string
	payload        string // raw JSON text, written to the file as it stands
	tHLC           string
}

func str(s string) *string { return &s }

// Boundary values: every identifier at its maximum length.
const (
	maxTenant = "T0123456789.abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVW-z" // 64 bytes
	maxKind   = "k:0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._:-" +
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX" // 128 bytes
	maxTHLC = "9999999999999-999999-" + "n0123456789.abcdefghijklmnopqrstuvwxyz_ABCDEFGHIJKLMNOPQRSTUVW-y" // 85 bytes
)

var cases = []testCase{
	{
		name:        "genesis",
		description: "first entry of the chain (acme, \"\"): prev_link is null, the link input starts with 32 zero bytes",
		tenantID:    "acme", partitionKey: "", kind: "email.send",
		payload: `{"to": "alice@example.com", "subject": "Welcome to ordo", "template": "welcome", "attempt": 1}`,
		tHLC:    "1704067200000-000000-scheduler-east-1",
	},
	{
		name: "chained", after: "genesis",
		description: "second entry of the chain (acme, \"\"): prev_link is the genesis vector's link",
		tenantID:    "acme", partitionKey: "", kind: "email.send",
		payload: `{"to": "bob@example.com", "subject": "Welcome to ordo", "template": "welcome", "attempt": 1}`,
		tHLC:    "1704067200000-000001-scheduler-east-1",
	},
	{
		name: "idempotency-key", after: "chained",
		description: "an idempotency key replaces the payload hash in the job id name; the link still covers the payload hash",
		tenantID:    "acme", partitionKey: "", kind: "billing:invoice.render",
		idempotencyKey: str("order-1234:invoice"),
		payload:        `{"order": 1234, "currency": "EUR", "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]}`,
		tHLC:           "1704067200005-000000-scheduler-west-2",
	},
	{
		name: "unicode", after: "idempotency-key",
		description: "unicode strings: non-BMP character raw and as an escaped surrogate pair, escaped control characters, characters JCS leaves unescaped (DEL, U+2028, <, >, &), the solidus escape",
		tenantID:    "acme", partitionKey: "", kind: "notify.push",
		payload: `{"title": "Grüße 😀", "escaped": "\ud83d\ude00 is U+1F600, \u00e9 is e-acute", ` +
			`"controls": "tab\tnewline\nbell\u0007unit-separator\u001fdelete\u007f", ` +
			`"quotes": "say \"hi\" \\ \/", "html": "<b>&amp;</b>", "separators": "\u2028\u2029", "bom": "\ufeff"}`,
		tHLC: "1704067200005-000001-scheduler-west-2",
	},
	{
		name:        "key-order",
		description: "nested objects whose members must be reordered; the rfc8785 member is the RFC 8785 section 3.2.3 example, where U+1F600 sorts before U+FB33 by UTF-16 code units but after it by UTF-8 bytes or code points",
		tenantID:    "globex", partitionKey: "", kind: "report.build",
		payload: `{"rfc8785": {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", ` +
			`"\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}, ` +
			`"nested": {"b": {"z": true, "y": false, "x": null}, "a": [{"d": 4, "c": 3}, {}, []]}, ` +
			`"aa": "a longer name sorts after its prefix", "a": "lower case", "B": "upper case sorts before lower case", "": "the empty name sorts first"}`,
		tHLC: "1704067260000-000000-scheduler-east-1",
	},
	{
		name: "integers", after: "key-order",
		description: "integers: exact up to 2^53; 2^53+1 is not a double and rounds to 2^53 (I-JSON); 1E2 and 100.0 are the integer 100",
		tenantID:    "globex", partitionKey: "", kind: "report.build",
		payload: `{"zero": 0, "one": 1, "negative": -42, "2^31": 2147483648, "2^32": 4294967296, ` +
			`"2^53-1": 9007199254740991, "2^53": 9007199254740992, "-2^53": -9007199254740992, ` +
			`"2^53+1": 9007199254740993, "1E2": 1E2, "100.0": 100.0}`,
		tHLC: "1704067260000-000001-scheduler-east-1",
	},
	{
		name: "floats", after: "integers",
		description: "floating-point numbers formatted as ECMAScript does: exponent form (signed, no leading zeros) from 1e21 up and below 1e-6, no trailing zeros, -0 as 0, shortest round-trip digits",
		tenantID:    "globex", partitionKey: "", kind: "report.build",
		payload: `{"1e21": 1e21, "1e20": 1e20, "1000000000000000000000": 1000000000000000000000, ` +
			`"0.000001": 0.000001, "1e-7": 1e-7, "0.0000001": 0.0000001, "4.50": 4.50, "-0": -0, "-0.0": -0.0, ` +
			`"0.1": 0.1, "0.30000000000000004": 0.30000000000000004, "1/3": 0.3333333333333333, ` +
			`"2E-3": 2E-3, "-1.5e-9": -1.5e-9, "123456789012345678901": 123456789012345678901, ` +
			`"max": 1.7976931348623157e308, "min-subnormal": 5e-324, "9.999999999999997e22": 9.999999999999997e22}`,
		tHLC: "1704067260001-000000-scheduler-west-2",
	},
	{
		name:        "partition",
		description: "non-empty partition key with non-ASCII characters and spaces: a chain of its own",
		tenantID:    "initech", partitionKey: "customer/42 · Zürich", kind: "crm.sync",
		payload: `{"customer": 42, "full": false}`,
		tHLC:    "1704067320000-000000-edge-zrh-1",
	},
	{
		name: "partition-key", after: "partition",
		description: "second entry of the partition chain, with a non-ASCII idempotency key",
		tenantID:    "initech", partitionKey: "customer/42 · Zürich", kind: "crm.sync",
		idempotencyKey: str("Bestellung №7 ✓"),
		payload:        `{"customer": 42, "full": true}`,
		tHLC:           "1704067320000-000001-edge-zrh-1",
	},
	{
		name:        "array",
		description: "top-level array: element order is kept, objects inside it are still sorted",
		tenantID:    "initech", partitionKey: "", kind: "batch.run",
		payload: `[3, "three", 3.0, true, false, null, {"b": 2, "a": 1}, []]`,
		tHLC:    "1704067380000-000000-scheduler-east-1",
	},
	{
		name: "string", after: "array",
		description: "top-level string",
		tenantID:    "initech", partitionKey: "", kind: "batch.run",
		payload: `"just a string, caf\u00e9"`,
		tHLC:    "1704067380000-000002-scheduler-east-1",
	},
	{
		name: "number", after: "string",
		description: "top-level number with surrounding whitespace: 1.50e+3 is 1500",
		tenantID:    "initech", partitionKey: "", kind: "batch.run",
		payload: " 1.50e+3\n",
		tHLC:    "1704067380001-000000-scheduler-east-1",
	},
	{
		name: "null", after: "number",
		description: "top-level null",
		tenantID:    "initech", partitionKey: "", kind: "batch.run",
		payload: `null`,
		tHLC:    "1704067380001-000001-scheduler-east-1",
	},
	{
		name:        "maximums",
		description: "every identifier at its maximum length: tenant_id 64 bytes, kind 128 bytes, partition_key and idempotency_key 255 bytes, t_hlc 85 bytes (a 64-character node id); empty object payload",
		tenantID:    maxTenant, partitionKey: maxPartition(), kind: maxKind,
		idempotencyKey: str(maxIdempotencyKey()),
		payload:        `{}`,
		tHLC:           maxTHLC,
	},
}

// maxPartition is 255 bytes mixing 1- to 4-byte UTF-8 characters.
func maxPartition() string {
	s := ""
	for len(s)+10 <= 255 {
		s += "aé€😀" // 1+2+3+4 bytes
	}
	for len(s) < 255 {
		s += "p"
	}
	return s
}

// maxIdempotencyKey is 255 bytes including characters that are control
// characters, which only partition keys refuse.
func maxIdempotencyKey() string {
	s := "key with\ttab\u0085and DEL\u007f:"
	for len(s) < 255 {
		s += "k"
	}
	return s
}

func main() {
	out := flag.String("o", "docs/chain-test-vectors.json", "output file")
	flag.Parse()

	for _, m := range []struct {
		s    string
		want int
	}{{maxTenant, 64}, {maxKind, 128}, {maxTHLC, 85}, {maxPartition(), 255}, {maxIdempotencyKey(), 255}} {
		if len(m.s) != m.want {
			log.Fatalf("boundary value %q is %d bytes, want %d", m.s, len(m.s), m.want)
		}
	}

	f := vectorfile.File{
		Comment: "Test vectors for docs/chain-spec.md. Generated by chain/internal/genvectors; " +
			"cross-checked by docs/verify-chain-vectors.mjs. Hex is lowercase; " +
			"job_id_name_hex and link_input_hex are intermediate values for debugging.",
		Namespace: chain.Namespace.String(),
	}
	links := map[string]chain.Hash{}
	for _, c := range cases {
		v, link, err := build(c, links)
		if err != nil {
			log.Fatalf("case %s: %v", c.name, err)
		}
		links[c.name] = link
		f.Vectors = append(f.Vectors, v)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <, > and & readable, as JCS does
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %d vectors to %s\n", len(f.Vectors), *out)
}

func build(c testCase, links map[string]chain.Hash) (vectorfile.Vector, chain.Hash, error) {
	var prev chain.Hash
	if c.after != "" {
		p, ok := links[c.after]
		if !ok {
			return vectorfile.Vector{}, chain.Hash{}, fmt.Errorf("after %q: no such earlier case", c.after)
		}
		prev = p
	}
	canonical, err := chain.Canonicalize([]byte(c.payload))
	if err != nil {
		return vectorfile.Vector{}, chain.Hash{}, err
	}
	payloadHash, err := chain.PayloadHash([]byte(c.payload))
	if err != nil {
		return vectorfile.Vector{}, chain.Hash{}, err
	}
	key := ""
	if c.idempotencyKey != nil {
		key = *c.idempotencyKey
	}
	jobID, err := chain.JobID(c.tenantID, c.partitionKey, c.kind, key, payloadHash)
	if err != nil {
		return vectorfile.Vector{}, chain.Hash{}, err
	}
	link, err := chain.Link(prev, jobID, c.tHLC, payloadHash)
	if err != nil {
		return vectorfile.Vector{}, chain.Hash{}, err
	}

	// The intermediate byte strings are assembled here from the spec, apart
	// from package chain, and must hash to the values it returned.
	nameKey := key
	if nameKey == "" {
		nameKey = payloadHash.String()
	}
	name := c.tenantID + "\x00" + c.partitionKey + "\x00" + c.kind + "\x00" + nameKey
	linkInput := string(prev[:]) + string(jobID[:]) + c.tHLC + string(payloadHash[:])
	if chain.Hash(sha256.Sum256([]byte(linkInput))) != link {
		return vectorfile.Vector{}, chain.Hash{}, fmt.Errorf("link input does not hash to the link")
	}

	v := vectorfile.Vector{
		Description:      c.description,
		TenantID:         c.tenantID,
		PartitionKey:     c.partitionKey,
		Kind:             c.kind,
		IdempotencyKey:   c.idempotencyKey,
		Payload:          json.RawMessage(c.payload),
		THLC:             c.tHLC,
		CanonicalPayload: string(canonical),
		PayloadHash:      payloadHash.String(),
		JobIDNameHex:     hex.EncodeToString([]byte(name)),
		JobID:            jobID.String(),
		LinkInputHex:     hex.EncodeToString([]byte(linkInput)),
		Link:             link.String(),
	}
	if c.after != "" {
		v.PrevLink = str(prev.String())
	}
	return v, link, nil
}
