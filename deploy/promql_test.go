package deploy_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

// selector is a metric name an expression uses, with the label names its
// matchers (between braces right after the name) compare.
type selector struct {
	Metric string
	Labels []string
}

// aggregators and keywords are the PromQL words that are never a metric
// name; listModifiers take a parenthesised list of label names.
var (
	aggregators = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
	keywords      = []string{"and", "or", "unless", "offset", "bool", "inf", "nan"}
	listModifiers = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
)

// selectors lists the metric selectors of a PromQL expression, which may
// hold Grafana variables ($job, ${x}, $__rate_interval). It is a lexer, not
// a parser: it knows strings, braces, brackets, numbers, variables, function
// calls (a name followed by "("), aggregations and their by/without lists,
// and the binary operators' keywords and on/ignoring/group lists; any other
// name is a metric. It errs towards reporting a word as a metric, so a
// word it does not know fails the check instead of passing silently.
func selectors(expr string) []selector {
	var out []selector
	r := []rune(expr)
	i := 0
	skipSpace := func(j int) int {
		for j < len(r) && unicode.IsSpace(r[j]) {
			j++
		}
		return j
	}
	// closing returns the index after the bracket closing the one at j.
	closing := func(j int) int {
		open, depth := r[j], 0
		shut := map[rune]rune{'(': ')', '{': '}', '[': ']'}[open]
		for ; j < len(r); j++ {
			switch r[j] {
			case '"', '\'', '`':
				j = skipString(r, j) - 1
			case open:
				depth++
			case shut:
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return j
	}
	for i < len(r) {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '"' || c == '\'' || c == '`':
			i = skipString(r, i)
		case c == '$':
			i++
			if i < len(r) && r[i] == '{' {
				i = closing(i)
			} else {
				for i < len(r) && isNameRune(r[i]) {
					i++
				}
			}
		case c == '[':
			i = closing(i)
		case c == '{': // a selector without a metric name
			i = closing(i)
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(r) && unicode.IsDigit(r[i+1])):
			for i < len(r) && (isNameRune(r[i]) || r[i] == '.') {
				i++
			}
		case isNameRune(c):
			start := i
			for i < len(r) && isNameRune(r[i]) {
				i++
			}
			word := string(r[start:i])
			next := skipSpace(i)
			switch {
			case slices.Contains(listModifiers, word):
				if next < len(r) && r[next] == '(' {
					i = closing(next)
				}
			case slices.Contains(aggregators, word), slices.Contains(keywords, word):
			case next < len(r) && r[next] == '(': // a function call
			default:
				s := selector{Metric: word}
				if next < len(r) && r[next] == '{' {
					end := closing(next)
					s.Labels = matcherLabels(r[next+1 : end-1])
					i = end
				}
				out = append(out, s)
			}
		default:
			i++
		}
	}
	return out
}

// matcherLabels returns the label names of a matcher list (inside braces).
func matcherLabels(r []rune) []string {
	var out []string
	for i := 0; i < len(r); {
		switch c := r[i]; {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(r, i)
		case isNameRune(c):
			start := i
			for i < len(r) && isNameRune(r[i]) {
				i++
			}
			out = append(out, string(r[start:i]))
		default:
			i++
		}
	}
	return out
}

// skipString returns the index after the string literal starting at i.
func skipString(r []rune, i int) int {
	q := r[i]
	for i++; i < len(r); i++ {
		if r[i] == '\\' && q != '`' {
			i++
			continue
		}
		if r[i] == q {
			return i + 1
		}
	}
	return i
}

func isNameRune(c rune) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func TestSelectors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{`up`, `up`},
		{`rate(a_total{job="$job", instance=~"$instance"}[$__rate_interval])`, `a_total{job,instance}`},
		{`histogram_quantile(0.99, sum by (job, le) (rate(h_bucket{x="a}b"}[5m])))`, `h_bucket{x}`},
		{`sum by (job) (a) > 0 and on (job) max by (job) (b{mode!="legacy"}) == 1`, `a b{mode}`},
		{`a / ignoring(code) group_left(route) b offset 5m`, `a b`},
		{`count by (job) (count by (job, mode) (m == 1)) > 1`, `m`},
		{`sum without (instance) (rate(x:y:rate5m[1m])) * 1e3 + .5`, `x:y:rate5m`},
		{`ordo_hlc_clock_offset_seconds > 0.5 * ordo_hlc_max_clock_drift_seconds`, `ordo_hlc_clock_offset_seconds ordo_hlc_max_clock_drift_seconds`},
		{`c{route=~"POST /v1/tenants/[{]tenant[}]/jobs", code=~"5.."}`, `c{route,code}`},
		{`${datasource} sumx(a)`, `a`},
		{`sumx`, `sumx`},
	} {
		var got []string
		for _, s := range selectors(tc.expr) {
			w := s.Metric
			if len(s.Labels) > 0 {
				w += "{" + strings.Join(s.Labels, ",") + "}"
			}
			got = append(got, w)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("selectors(%q) = %q, want %q", tc.expr, strings.Join(got, " "), tc.want)
		}
	}
}
