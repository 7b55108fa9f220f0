package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decoder fills a Config from the merged, lower-cased key tree, checking
// every key against the Config type and every value against its field's
// type, and collecting what is wrong.
type decoder struct {
	origins   map[string]string
	spellings map[string]string
	problems  []Problem
}

var durationType = reflect.TypeFor[time.Duration]()

func (d *decoder) decode(cfg *Config, raw map[string]any) {
	d.section(reflect.ValueOf(cfg).Elem(), raw, nil, nil)
}

// configFields returns the exported fields of a section type: the keys.
func configFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			out = append(out, f)
		}
	}
	return out
}

func (d *decoder) add(path []string, lower []string, value, want string) {
	d.problems = append(d.problems, Problem{Key: canonicalPath(path), Value: value, Origin: originOf(d.origins, strings.Join(lower, ".")), Want: want})
}

// section decodes the map m into the struct v. path is the canonical key
// path of v, lower its lower-case form.
func (d *decoder) section(v reflect.Value, m map[string]any, path, lower []string) {
	fields := configFields(v.Type())
	byLower := make(map[string]reflect.StructField, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		byLower[strings.ToLower(f.Name)] = f
		names = append(names, f.Name)
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lk := append(append([]string(nil), lower...), k)
		f, ok := byLower[k]
		if !ok {
			spelled := k
			if s, ok := d.spellings[strings.Join(lk, ".")]; ok {
				spelled = s
			}
			where := "the top level"
			if len(path) > 0 {
				where = canonicalPath(path)
			}
			d.add(append(append([]string(nil), path...), spelled), lk, "",
				fmt.Sprintf("unknown key; the keys of %s are %s", where, strings.Join(names, ", ")))
			continue
		}
		p := append(append([]string(nil), path...), f.Name)
		d.value(v.FieldByIndex(f.Index), m[k], p, lk)
	}
}

// value decodes raw into the field v.
func (d *decoder) value(v reflect.Value, raw any, path, lower []string) {
	if raw == nil {
		return // "Key:" with nothing after it leaves the default
	}
	show := func() string { return showValue(path, raw) }
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := raw.(string)
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if !ok || err != nil {
			d.add(path, lower, show(), `want a duration such as "500ms", "30s" or "2m"`)
			return
		}
		v.SetInt(int64(dur))
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.add(path, lower, show(), "want a section (keys below it), not a value")
			return
		}
		d.section(v, m, path, lower)
	case t.Kind() == reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				d.add(path, lower, show(), "want true or false")
				return
			}
			v.SetBool(b)
		default:
			d.add(path, lower, show(), "want true or false")
		}
	case t.Kind() == reflect.Int:
		n, ok := toInt(raw)
		if !ok {
			d.add(path, lower, show(), "want a whole number")
			return
		}
		v.SetInt(n)
	case t.Kind() == reflect.Float64:
		f, ok := toFloat(raw)
		if !ok {
			d.add(path, lower, show(), "want a number")
			return
		}
		v.SetFloat(f)
	case t.Kind() == reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case bool, int, int64, uint64, float64:
			v.SetString(fmt.Sprint(x))
		default:
			d.add(path, lower, show(), "want a single value, not a list or section")
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		items, ok := listItems(raw, true)
		if !ok {
			d.add(path, lower, show(), `want a list of values (in a variable: "a,b" or Key__0, Key__1)`)
			return
		}
		out := reflect.MakeSlice(t, 0, len(items))
		for i, item := range items {
			switch x := item.(type) {
			case string:
				out = reflect.Append(out, reflect.ValueOf(x).Convert(t.Elem()))
			case bool, int, int64, uint64, float64:
				out = reflect.Append(out, reflect.ValueOf(fmt.Sprint(x)).Convert(t.Elem()))
			default:
				ip := append(append([]string(nil), path...), strconv.Itoa(i))
				d.add(ip, append(append([]string(nil), lower...), strconv.Itoa(i)), showValue(ip, item), "want a single value")
			}
		}
		v.Set(out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		items, ok := listItems(raw, false)
		if !ok {
			d.add(path, lower, show(), "want a list of sections (in variables: Key__0__Field, Key__1__Field)")
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			ip := append(append([]string(nil), path...), strconv.Itoa(i))
			il := append(append([]string(nil), lower...), strconv.Itoa(i))
			m, ok := item.(map[string]any)
			if !ok {
				d.add(ip, il, showValue(ip, item), "want a section (keys below it)")
				continue
			}
			d.section(out.Index(i), m, ip, il)
		}
		v.Set(out)
	default:
		panic(fmt.Sprintf("config: field %s has type %s, which the decoder does not handle", canonicalPath(path), t))
	}
}

// listItems reads a list: a YAML list, a map with index keys (from
// variables Key__0, Key__1), or, when splitStrings, a comma-separated
// string.
func listItems(raw any, splitStrings bool) ([]any, bool) {
	switch x := raw.(type) {
	case []any:
		return x, true
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, true
	case string:
		if !splitStrings {
			return nil, false
		}
		var out []any
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case map[string]any:
		idx := make([]int, 0, len(x))
		byIdx := make(map[int]any, len(x))
		for k, item := range x {
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 {
				return nil, false
			}
			idx = append(idx, n)
			byIdx[n] = item
		}
		sort.Ints(idx)
		out := make([]any, len(idx))
		for i, n := range idx {
			out[i] = byIdx[n]
		}
		return out, true
	}
	return nil, false
}

func toInt(raw any) (int64, bool) {
	switch x := raw.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt64 || x < math.MinInt64 {
			return 0, false
		}
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(strings.ReplaceAll(x, "_", "")), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func toFloat(raw any) (float64, bool) {
	switch x := raw.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

// showValue renders a value for a message: strings quoted, database URLs
// without their password.
func showValue(path []string, raw any) string {
	switch x := raw.(type) {
	case string:
		if len(path) > 0 && path[len(path)-1] == "Url" {
			x = RedactURL(x)
		}
		return strconv.Quote(x)
	case map[string]any:
		return "(a section)"
	case []any:
		return "(a list)"
	}
	return fmt.Sprint(raw)
}

// RedactURL hides the password of a URL (postgres://user:secret@host) for
// messages and logs.
func RedactURL(u string) string {
	scheme := strings.Index(u, "://")
	if scheme < 0 {
		return u
	}
	rest := u[scheme+3:]
	at := strings.IndexByte(rest, '@')
	if slash := strings.IndexByte(rest, '/'); slash >= 0 && slash < at {
		at = -1
	}
	if at < 0 {
		return u
	}
	userinfo := rest[:at]
	if colon := strings.IndexByte(userinfo, ':'); colon >= 0 {
		return u[:scheme+3] + userinfo[:colon] + ":xxxxx" + rest[at:]
	}
	return u
}

// Diff compares two configurations and returns the keys whose values
// differ: those a running service applies (tagged reload:"live") and
// those that need a restart.
func Diff(old, cur *Config) (live, restart []string) {
	diffValue(reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem(), nil, false, &live, &restart)
	return live, restart
}

func diffValue(a, b reflect.Value, path []string, isLive bool, live, restart *[]string) {
	if a.Kind() == reflect.Struct && a.Type() != durationType {
		for _, f := range configFields(a.Type()) {
			diffValue(a.FieldByIndex(f.Index), b.FieldByIndex(f.Index), append(append([]string(nil), path...), f.Name),
				isLive || f.Tag.Get("reload") == "live", live, restart)
		}
		return
	}
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return
	}
	if isLive {
		*live = append(*live, canonicalPath(path))
	} else {
		*restart = append(*restart, canonicalPath(path))
	}
}

// Keys lists every key of the configuration, canonical, in order, with
// whether a change takes effect on a running service.
func Keys() []KeyInfo {
	var out []KeyInfo
	var walk func(t reflect.Type, path []string, isLive bool)
	walk = func(t reflect.Type, path []string, isLive bool) {
		for _, f := range configFields(t) {
			p := append(append([]string(nil), path...), f.Name)
			l := isLive || f.Tag.Get("reload") == "live"
			if f.Type.Kind() == reflect.Struct && f.Type != durationType {
				walk(f.Type, p, l)
				continue
			}
			out = append(out, KeyInfo{Key: canonicalPath(p), Live: l})
		}
	}
	walk(reflect.TypeFor[Config](), nil, false)
	return out
}

// KeyInfo describes one configuration key.
type KeyInfo struct {
	Key  string
	Live bool // a change takes effect on a running service
}
