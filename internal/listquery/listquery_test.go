package listquery

import (
	"net/url"
	"testing"

	"github.com/ordo-sched/ordo/driver"
)

func TestParse(t *testing.T) {
	v, _ := url.ParseQuery("state=pending,running&state=failed&kind=email.send&partition=&limit=5&payload=true")
	p, e := Parse("acme", v)
	if e != nil {
		t.Fatal(e)
	}
	if p.TenantID != "acme" || len(p.Statuses) != 3 || p.Statuses[2] != driver.StatusFailed || p.Kind != "email.send" ||
		p.Partition == nil || *p.Partition != "" || p.Limit != 5 || !p.WithPayload {
		t.Fatalf("Parse = %+v", p)
	}
	// status, the name job answers give the field, is the same filter.
	v, _ = url.ParseQuery("status=failed,cancelled")
	if p, e := Parse("acme", v); e != nil || len(p.Statuses) != 2 || p.Statuses[1] != driver.StatusCancelled {
		t.Fatalf("status filter: %+v, %v", p, e)
	}
	v, _ = url.ParseQuery("status=failed&state=failed")
	if _, e := Parse("acme", v); e == nil || e.Key != "status" {
		t.Fatalf("state and status together: %v", e)
	}
	for query, newest := range map[string]bool{"order=newest": true, "order=oldest": false, "": false} {
		v, _ := url.ParseQuery(query)
		if p, e := Parse("acme", v); e != nil || p.Newest != newest {
			t.Fatalf("%q: Newest = %v, %v; want %v", query, p.Newest, e, newest)
		}
	}
	// payload_contains is taken as it is: no trimming, % and _ literal.
	v = url.Values{"payload_contains": {" 50%_off "}}
	if p, e := Parse("acme", v); e != nil || p.PayloadContains != " 50%_off " {
		t.Fatalf("payload_contains: %+v, %v", p, e)
	}
	if p, _ := Parse("acme", url.Values{}); p.Partition != nil || p.Statuses != nil || p.PayloadContains != "" {
		t.Fatalf("an empty query filters: %+v", p)
	}
}

// Every refusal names the key that was wrong.
func TestParseRefusals(t *testing.T) {
	for query, key := range map[string]string{
		"state=done":             "state",
		"status=done":            "status",
		"state=":                 "state",
		"kind=9x":                "kind",
		"partition=a%00b":        "partition",
		"cursor=nonsense:::":     "cursor",
		"limit=0":                "limit",
		"limit=1001":             "limit",
		"payload=maybe":          "payload",
		"payload_contains=a%00b": "payload_contains",
		"payload_contains=%ff":   "payload_contains",
		"order=up":               "order",
		"sort=desc":              "sort",
	} {
		v, _ := url.ParseQuery(query)
		_, e := Parse("acme", v)
		if e == nil || e.Key != key || e.Unknown != (key == "sort") {
			t.Errorf("%s: error %+v, want one naming %s", query, e, key)
		}
	}
	v, _ := url.ParseQuery("view=chain")
	if _, e := Parse("acme", v, "view"); e != nil {
		t.Errorf("a key the caller handles is refused: %v", e)
	}
}

// FuzzParse: any query string is accepted with values in range or
// refused naming a key; never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"state=pending,running&limit=5", "cursor=nonsense:::", "partition=", "kind=a.b&payload=true",
		"limit=-1", "state=%ff", "partition=a%00b", "payload_contains=50%25_off", "payload_contains=%ff", "cursor=" + url.QueryEscape("1767225600000-000000-node-a|x")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, e := Parse("acme", v)
		if e != nil {
			if e.Msg == "" || e.Key == "" && !e.Unknown { // an unknown empty key is named as it is
				t.Fatalf("a refusal of %q names no key or reason: %+v", query, e)
			}
			return
		}
		if p.TenantID != "acme" || p.Limit < 0 || p.Limit > driver.MaxListLimit {
			t.Fatalf("accepted %q as %+v", query, p)
		}
		// What Parse accepts, a backend accepts.
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted %q as %+v, which the backends refuse: %v", query, p, err)
		}
		for _, s := range p.Statuses {
			if s == "" {
				t.Fatalf("accepted %q with an empty state", query)
			}
		}
	})
}
