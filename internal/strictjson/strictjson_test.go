package strictjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ordo-sched/ordo/internal/strictjson"
)

type job struct {
	Kind    string          `json:"kind"`
	Key     string          `json:"idempotency_key"`
	Payload json.RawMessage `json:"payload"`
	Meta    map[string]any  `json:"meta"`
}

type batch struct {
	Jobs []job `json:"jobs"`
}

type leased struct {
	Token string `json:"lease_token"`
}

type failRequest struct {
	leased
	Error string `json:"error"`
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		kind       strictjson.Kind
		path       string
	}{
		{"invalid UTF-8 in a value", "{\"kind\":\"order-\xfe\"}", strictjson.InvalidUTF8, ""},
		{"invalid UTF-8 in a payload", "{\"payload\":{\"a\":\"\xff\"}}", strictjson.InvalidUTF8, ""},
		{"lone high surrogate", `{"idempotency_key":"order-\ud800"}`, strictjson.InvalidUTF8, ""},
		{"lone low surrogate", `{"idempotency_key":"order-\udc00x"}`, strictjson.InvalidUTF8, ""},
		{"high surrogate then a non-surrogate escape", `{"kind":"\ud800\u0041"}`, strictjson.InvalidUTF8, ""},
		{"duplicate member", `{"kind":"a","kind":"b"}`, strictjson.DuplicateKey, "kind"},
		{"duplicate member in a payload", `{"payload":{"url":"a","url":"b"}}`, strictjson.DuplicateKey, "payload.url"},
		{"duplicate member in a map", `{"meta":{"x":1,"x":2}}`, strictjson.DuplicateKey, "meta.x"},
		{"duplicate member in a list item", `{"jobs":[{"kind":"a"},{"kind":"a","kind":"b"}]}`, strictjson.DuplicateKey, "jobs[1].kind"},
		{"case variant of a field", `{"KIND":"a"}`, strictjson.UnknownField, "KIND"},
		{"case variant beside the field", `{"kind":"a","Kind":"b"}`, strictjson.UnknownField, "Kind"},
		{"unknown field", `{"kinds":"a"}`, strictjson.UnknownField, "kinds"},
		{"two values", `{"kind":"a"} {"kind":"b"}`, strictjson.Trailing, ""},
		{"trailing data", `{"kind":"a"} x`, strictjson.Trailing, ""},
		{"too deep", `{"payload":` + strings.Repeat("[", strictjson.MaxDepth) + strings.Repeat("]", strictjson.MaxDepth) + `}`, strictjson.TooDeep, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := any(&job{})
			if strings.Contains(tc.body, `"jobs"`) {
				dst = &batch{}
			}
			err := strictjson.Decode([]byte(tc.body), dst)
			var e *strictjson.Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%q) = %v; want a %s refusal", tc.body, err, tc.kind)
			}
			if e.Kind != tc.kind || (tc.path != "" && e.Path != tc.path) {
				t.Fatalf("Decode(%q): %s at %q (%v); want %s at %q", tc.body, e.Kind, e.Path, e, tc.kind, tc.path)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	for _, body := range []string{
		`{"kind":"a","idempotency_key":"order-é-\u00e9-\ud83d\ude00","payload":{"url":"a","URL":"b","n":[1,{"x":null}]}}`,
		`{"meta":{"kind":1,"KIND":2}}`,
		`{"kind":"back\\slash \"quoted\" \\ud800 is text here"}`,
		`{"payload":` + strings.Repeat("[", strictjson.MaxDepth-1) + strings.Repeat("]", strictjson.MaxDepth-1) + `}`,
	} {
		var j job
		if err := strictjson.Decode([]byte(body), &j); err != nil {
			t.Errorf("Decode(%.80q) = %v", body, err)
		}
	}
	var f failRequest
	if err := strictjson.Decode([]byte(`{"lease_token":"t","error":"e"}`), &f); err != nil || f.Token != "t" {
		t.Fatalf("fields of an embedded unexported struct: %+v, %v", f, err)
	}
	var j job
	if err := strictjson.Decode([]byte(`{"kind":"a","payload":{"b":1}}`), &j); err != nil || j.Kind != "a" || string(j.Payload) != `{"b":1}` {
		t.Fatalf("decoded %+v, %v", j, err)
	}
}

func TestDecodeCountsItemsFirst(t *testing.T) {
	body := []byte(`{"jobs":[{"kind":"a"},{"kind":"b"},{"kind":"c"}]}`)
	var b batch
	err := strictjson.Decode(body, &b, strictjson.Limit{Path: "jobs", Max: 2})
	var e *strictjson.Error
	if !errors.As(err, &e) || e.Kind != strictjson.TooMany || e.Path != "jobs" || len(b.Jobs) != 0 {
		t.Fatalf("3 jobs against a limit of 2: %v, decoded %d", err, len(b.Jobs))
	}
	if err := strictjson.Decode(body, &b, strictjson.Limit{Path: "jobs", Max: 3}); err != nil || len(b.Jobs) != 3 {
		t.Fatalf("3 jobs against a limit of 3: %v, decoded %d", err, len(b.Jobs))
	}
}

// Syntax and type errors are encoding/json's own.
func TestDecodePassesOnEncodingJSONErrors(t *testing.T) {
	var syn *json.SyntaxError
	if err := strictjson.Decode([]byte(`{"kind":`), &job{}); err == nil || errors.As(err, new(*strictjson.Error)) {
		t.Fatalf("truncated: %v", err)
	}
	if err := strictjson.Decode([]byte(`{"kind":x}`), &job{}); !errors.As(err, &syn) {
		t.Fatalf("bad token: %v", err)
	}
	var typ *json.UnmarshalTypeError
	if err := strictjson.Decode([]byte(`{"kind":1}`), &job{}); !errors.As(err, &typ) || typ.Field != "kind" {
		t.Fatalf("wrong type: %v", err)
	}
}

// FuzzDecode: never a panic, and whatever Decode accepts is valid UTF-8
// JSON that encoding/json decodes too, with no duplicate member.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"kind":"a"}`, `{"jobs":[{"kind":"a","payload":{"x":[1,2]}}]}`, `{"kind":"\ud800"}`,
		"{\"kind\":\"\xff\"}", `{"kind":"a","kind":"b"}`, `{"KIND":"a"}`, `[`, `{"payload":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b batch
		if err := strictjson.Decode(data, &b); err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var again batch
		if err := json.Unmarshal(data, &again); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
	})
}
