// Package listquery reads a job-list query string into driver.ListParams,
// for the HTTP API and the dashboard alike, so both accept, and refuse,
// the same filters with the same words.
//
// The grammar: state or status (repeatable, comma-separated job states), kind,
// partition (present means one partition; empty is the default one),
// cursor (a next value of an earlier page), limit (1..driver.MaxListLimit),
// payload (a boolean), order (oldest, the default: HLC order; or newest)
// and payload_contains (text the payload must contain: case-sensitive,
// literal, searched in the tenant's newest driver.MaxSearchWindow jobs
// only). Any other key is refused unless the caller handles it itself
// (Parse's extra).
package listquery

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// Keys are the keys Parse reads. "status" is "state" by the name job
// answers give the field; a query may use either, not both.
var Keys = []string{"state", "status", "kind", "partition", "cursor", "limit", "payload", "order", "payload_contains"}

// Error names the query key that was wrong and why.
type Error struct {
	Key     string
	Unknown bool // the key is not one of the grammar's
	Msg     string
}

func (e *Error) Error() string { return e.Msg }

// Parse reads v as a list query for tenant. Keys in extra are the
// caller's own and are skipped.
func Parse(tenant string, v url.Values, extra ...string) (driver.ListParams, *Error) {
	p := driver.ListParams{TenantID: tenant}
	bad := func(key, format string, args ...any) (driver.ListParams, *Error) {
		return p, &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	for k := range v {
		if !slices.Contains(Keys, k) && !slices.Contains(extra, k) {
			return p, &Error{Key: k, Unknown: true,
				Msg: fmt.Sprintf("unknown query parameter %q; known: %s", k, strings.Join(append(slices.Clone(Keys), extra...), ", "))}
		}
	}
	stateKey := "state"
	if v.Has("status") {
		if v.Has("state") {
			return bad("status", "give state or status (the same filter), not both")
		}
		stateKey = "status"
	}
	for _, list := range v[stateKey] {
		for _, st := range strings.Split(list, ",") {
			if !driver.Status(st).Valid() {
				return bad(stateKey, "%s %q, want one of pending, scheduled, running, succeeded, failed, cancelled, chain_violation", stateKey, st)
			}
			p.Statuses = append(p.Statuses, driver.Status(st))
		}
	}
	if k := v.Get("kind"); k != "" {
		if err := chain.ValidateKind(k); err != nil {
			return bad("kind", "%v", err)
		}
		p.Kind = k
	}
	if v.Has("partition") {
		part := v.Get("partition")
		if err := chain.ValidatePartitionKey(part); err != nil {
			return bad("partition", "%v", err)
		}
		p.Partition = &part
	}
	if c := v.Get("cursor"); c != "" {
		if _, err := driver.ParseCursor(c); err != nil {
			return bad("cursor", "%v", err)
		}
		p.Cursor = c
	}
	if ls := v.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil || n < 1 || n > driver.MaxListLimit {
			return bad("limit", "limit %q, want 1..%d", ls, driver.MaxListLimit)
		}
		p.Limit = n
	}
	switch o := v.Get("order"); o {
	case "", "oldest":
	case "newest":
		p.Newest = true
	default:
		return bad("order", "order %q, want oldest (HLC order, the default) or newest", o)
	}
	if ps := v.Get("payload"); ps != "" {
		b, err := strconv.ParseBool(ps)
		if err != nil {
			return bad("payload", "payload %q, want true or false", ps)
		}
		p.WithPayload = b
	}
	if text := v.Get("payload_contains"); text != "" {
		if err := driver.ValidatePayloadSearch(text); err != nil {
			return bad("payload_contains", "%v", err)
		}
		p.PayloadContains = text
	}
	return p, nil
}
