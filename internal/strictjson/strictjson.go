// Package strictjson decodes request bodies without what encoding/json
// lets through.
//
// Invariants: Decode accepts a document only if
//   - it is valid UTF-8, and every \u escape of a surrogate is one half of
//     a pair (encoding/json replaces both with U+FFFD, so two different
//     identifiers would decode to the same string);
//   - no object has two members of the same name (encoding/json keeps the
//     last, so a checker and a worker could read different values);
//   - every member name matches a field of the destination exactly, in
//     case too (encoding/json also takes "KIND" for "kind"); members of a
//     map or of a json.RawMessage value are not matched, only checked for
//     duplicates;
//   - arrays and objects nest at most MaxDepth deep;
//   - it holds one value, and nothing after it but white space.
//
// What passes is then decoded by encoding/json, whose errors (syntax,
// types) are returned as they are.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds the nesting of arrays and objects in a request. It is
// above chain.MaxPayloadDepth plus the few levels of a request's own, so
// that a payload nested too deep is refused by the payload's check, which
// names the field.
const MaxDepth = 1100

// Kind names what an Error refuses.
type Kind string

const (
	// InvalidUTF8: bytes that are not UTF-8, or an unpaired surrogate.
	InvalidUTF8 Kind = "invalid_utf8"
	// DuplicateKey: a member name twice in one object.
	DuplicateKey Kind = "duplicate_key"
	// UnknownField: a name the destination has no field for, exactly.
	UnknownField Kind = "unknown_field"
	// TooDeep: nesting past MaxDepth.
	TooDeep Kind = "too_deep"
	// TooMany: an array past its Limit.
	TooMany Kind = "too_many"
	// Trailing: anything but white space after the one value.
	Trailing Kind = "trailing"
)

// Limit bounds the items of the array at Path ("jobs"), counted before
// anything is decoded, so that an oversized batch costs a scan of its
// text, not the memory of its decoded items.
type Limit struct {
	Path string
	Max  int
}

// Error is a refusal by one of the package's checks.
type Error struct {
	Kind   Kind
	Path   string // the member's path, "jobs[2].kind"; empty at the top
	Offset int64  // byte offset in the document
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Decode checks data as the package doc says, and against limits, and
// decodes it into dst, a pointer, with unknown fields refused.
func Decode(data []byte, dst any, limits ...Limit) error {
	if err := checkText(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	w := walker{dec: dec, limits: limits}
	err := w.value(reflect.TypeOf(dst), "", 0)
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case err != nil:
		// A syntax error: encoding/json below says it best.
	case dec.More():
		return &Error{Kind: Trailing, Offset: dec.InputOffset(), Msg: "the document holds more than one JSON value"}
	default:
		if _, err := dec.Token(); err != io.EOF {
			return &Error{Kind: Trailing, Offset: dec.InputOffset(), Msg: "trailing data after the JSON value"}
		}
	}
	full := json.NewDecoder(bytes.NewReader(data))
	full.DisallowUnknownFields()
	return full.Decode(dst)
}

// checkText refuses invalid UTF-8 and unpaired surrogate escapes.
func checkText(s []byte) error {
	if !utf8.Valid(s) {
		i := 0
		for i < len(s) {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return &Error{Kind: InvalidUTF8, Offset: int64(i), Msg: fmt.Sprintf("invalid UTF-8 at byte %d", i)}
	}
	inString := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			inString = !inString
		case c == '\\' && inString && i+1 < len(s):
			i++
			if s[i] != 'u' {
				continue
			}
			r, ok := hex4(s, i+1)
			if !ok {
				continue // a syntax error, for encoding/json to name
			}
			at := i - 1
			i += 4
			switch {
			case utf16.IsSurrogate(r) && r < 0xDC00: // high: a low must follow
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if lo, ok := hex4(s, i+3); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						i += 6
						continue
					}
				}
				return &Error{Kind: InvalidUTF8, Offset: int64(at), Msg: fmt.Sprintf("unpaired surrogate \\u%04x at byte %d", r, at)}
			case utf16.IsSurrogate(r):
				return &Error{Kind: InvalidUTF8, Offset: int64(at), Msg: fmt.Sprintf("unpaired surrogate \\u%04x at byte %d", r, at)}
			}
		}
	}
	return nil
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// walker reads the token stream beside the destination's type.
type walker struct {
	dec    *json.Decoder
	limits []Limit
}

func (w *walker) maxItems(path string) int {
	for _, l := range w.limits {
		if l.Path == path {
			return l.Max
		}
	}
	return -1
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

// value reads one value; t is what it decodes into (nil: anything).
func (w *walker) value(t reflect.Type, path string, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || (t != nil && t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := w.dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth+1 > MaxDepth {
		return &Error{Kind: TooDeep, Path: path, Offset: w.dec.InputOffset(),
			Msg: fmt.Sprintf("%s: arrays and objects nest more than %d deep", orTop(path), MaxDepth)}
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		limit := w.maxItems(path)
		for i := 0; w.dec.More(); i++ {
			if i == limit {
				return &Error{Kind: TooMany, Path: path, Offset: w.dec.InputOffset(),
					Msg: fmt.Sprintf("%s: more than %d items", orTop(path), limit)}
			}
			if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	case '{':
		fields := fieldsOf(t)
		seen := map[string]bool{}
		for w.dec.More() {
			at := w.dec.InputOffset()
			tok, err := w.dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			p := name
			if path != "" {
				p = path + "." + name
			}
			if seen[name] {
				return &Error{Kind: DuplicateKey, Path: p, Offset: at, Msg: fmt.Sprintf("%s: duplicate member name", p)}
			}
			seen[name] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				f, ok := fields[name]
				if !ok {
					return &Error{Kind: UnknownField, Path: p, Offset: at, Msg: fmt.Sprintf("unknown field %q", p)}
				}
				ft = f
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := w.value(ft, p, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = w.dec.Token() // the closing delimiter
	return err
}

// fieldsOf maps the exact JSON names of a struct's fields to their types;
// nil for anything but a struct.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			// Promoted, as encoding/json does, even from an unexported
			// embedded type.
			for n, ft := range fieldsOf(f.Type) {
				out[n] = ft
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func orTop(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}
