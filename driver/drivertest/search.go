// The listing area, continued: the payload search of ListJobs and the
// kinds of RecentKinds, which both backends must answer alike.

package drivertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/queue"
)

// searchFixture enqueues, for tenant acme: L0, L1, L2 legacy-only, then
// H1..H6 on the HLC side only; and for tenant other, O1 (HLC) whose payload
// would match most searches. Each one millisecond after the previous. The
// payloads hold the characters LIKE would take for wildcards (% and _),
// mixed case, and non-ASCII text; their keys hold none of them. Each has
// its own "i", or its id would be another's (ids derive from the payload).
func searchFixture(t *testing.T, db Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	clock, wall := hlctest.ManualClock(t, time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC).UnixMilli(), hlc.Config{Node: "search-node", Store: db.HLCState()})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{q: q, wall: wall, ids: map[string]uuid.UUID{}}
	legacy, hlcOnly := queue.Options{}, queue.Options{EnableHlcOrdering: true}
	for _, s := range []struct {
		mode               queue.Options
		name, tenant, kind string
		payload            string
	}{
		{legacy, "L0", "acme", "mail.send", `{"i":1,"note":"old"}`},
		{legacy, "L1", "acme", "mail.send", `{"i":2,"note":"50%_off"}`},
		{legacy, "L2", "acme", "report", `{"i":3,"note":"5000off"}`},
		{hlcOnly, "H1", "acme", "mail.send", `{"i":4,"note":"50%_off"}`},
		{hlcOnly, "H2", "acme", "report", `{"i":5,"note":"50x_off"}`},
		{hlcOnly, "H3", "acme", "report", `{"i":6,"note":"5000off"}`},
		{hlcOnly, "H4", "acme", "Audit", `{"i":7,"note":"CASE"}`},
		{hlcOnly, "H5", "acme", "mail.send", `{"i":8,"city":"Zürich"}`},
		{hlcOnly, "H6", "acme", "report", `{"i":9,"n":6}`},
		{hlcOnly, "O1", "other", "secret.kind", `{"i":10,"note":"50%_off 5000off CASE"}`},
	} {
		if err := q.SetOptions(ctx, s.mode); err != nil {
			t.Fatal(err)
		}
		wall.Advance(time.Millisecond)
		res, err := q.Enqueue(ctx, queue.Job{TenantID: s.tenant, Kind: s.kind, Payload: []byte(s.payload)})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[s.name] = res.JobID
	}
	return f
}

// testPayloadSearch: PayloadContains is a case-sensitive, literal
// substring test of the payload text on both sides and both backends (%
// and _ match only themselves), combines with the other filters, pages,
// and reads only the newest SearchWindow jobs of each side.
func testPayloadSearch(t *testing.T, newTarget func(t *testing.T) Target) {
	db := newTarget(t).Open(t)
	f := searchFixture(t, db)
	f.cancel(t, "H2")
	for _, c := range []struct {
		name string
		p    driver.ListParams
		want []string
	}{
		{"percent and underscore are literal", driver.ListParams{PayloadContains: "50%_off"}, []string{"H1", "L1"}},
		{"percent alone", driver.ListParams{PayloadContains: "%"}, []string{"H1", "L1"}},
		{"underscore alone", driver.ListParams{PayloadContains: "_"}, []string{"H1", "H2", "L1"}},
		{"underscore after a letter", driver.ListParams{PayloadContains: "x_o"}, []string{"H2"}},
		{"no wildcard matches digits", driver.ListParams{PayloadContains: "50_0"}, []string{}},
		{"case-sensitive, no match", driver.ListParams{PayloadContains: "case"}, []string{}},
		{"case-sensitive, match", driver.ListParams{PayloadContains: "CASE"}, []string{"H4"}},
		{"non-ASCII", driver.ListParams{PayloadContains: "Zürich"}, []string{"H5"}},
		{"non-ASCII case", driver.ListParams{PayloadContains: "zürich"}, []string{}},
		{"a JSON string's quotes", driver.ListParams{PayloadContains: `"5000off"`}, []string{"H3", "L2"}},
		{"with a kind", driver.ListParams{PayloadContains: "off", Kind: "report"}, []string{"H2", "H3", "L2"}},
		{"with a state", driver.ListParams{PayloadContains: "off", Statuses: []queue.Status{queue.StatusPending}}, []string{"H1", "H3", "L1", "L2"}},
		{"no search", driver.ListParams{}, []string{"H1", "H2", "H3", "H4", "H5", "H6", "L0", "L1", "L2"}},
		// The window: the newest SearchWindow jobs of each side, then the
		// substring test.
		{"window of 3", driver.ListParams{PayloadContains: `"`, SearchWindow: 3}, []string{"H4", "H5", "H6", "L0", "L1", "L2"}},
		{"window of 2", driver.ListParams{PayloadContains: "off", SearchWindow: 2}, []string{"L1", "L2"}},
		{"window of 4", driver.ListParams{PayloadContains: "off", SearchWindow: 4}, []string{"H3", "L1", "L2"}},
		{"window of 1", driver.ListParams{PayloadContains: `"`, SearchWindow: 1}, []string{"H6", "L2"}},
		{"window without a search", driver.ListParams{SearchWindow: 1}, []string{"H1", "H2", "H3", "H4", "H5", "H6", "L0", "L1", "L2"}},
	} {
		for _, limit := range []int{1, 2, 100} {
			p := c.p
			p.TenantID, p.Limit = "acme", limit
			if got := f.names(listAll(t, db, p)); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s (limit %d): %v, want %v", c.name, limit, got, c.want)
			}
		}
	}
	// The other tenant's matching job is never found from acme, and its
	// own search finds it.
	if got := f.names(listAll(t, db, driver.ListParams{TenantID: "other", PayloadContains: "CASE", Limit: 10})); !reflect.DeepEqual(got, []string{"O1"}) {
		t.Errorf("tenant other: %v", got)
	}
	for _, bad := range []driver.ListParams{
		{TenantID: "acme", PayloadContains: "a\x00b"},
		{TenantID: "acme", PayloadContains: "\xff\xfe"},
		{TenantID: "acme", PayloadContains: strings.Repeat("x", driver.MaxPayloadSearch+1)},
		{TenantID: "acme", PayloadContains: "x", SearchWindow: -1},
		{TenantID: "acme", PayloadContains: "x", SearchWindow: driver.MaxSearchWindow + 1},
	} {
		if _, _, err := db.ListJobs(context.Background(), bad); !errors.Is(err, driver.ErrInvalidList) {
			t.Errorf("ListJobs(%.60q, window %d): %v, want ErrInvalidList", bad.PayloadContains, bad.SearchWindow, err)
		}
	}
}

// testSearchWindowTies: jobs enqueued in one batch may share a time (the
// legacy table's created_at); the window still holds exactly SearchWindow
// jobs of each side, the last ones in list order, on both backends.
func testSearchWindowTies(t *testing.T, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	db := newTarget(t).Open(t)
	f := searchFixture(t, db)
	for side, mode := range []queue.Options{{}, {EnableHlcOrdering: true}} {
		if err := f.q.SetOptions(ctx, mode); err != nil {
			t.Fatal(err)
		}
		f.wall.Advance(time.Millisecond)
		var batch []queue.Job
		for i := range 5 {
			batch = append(batch, queue.Job{TenantID: "acme", Kind: "tie", Payload: fmt.Appendf(nil, `{"side":%d,"tie":%d}`, side, i)})
		}
		if _, err := f.q.EnqueueMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all := listAll(t, db, driver.ListParams{TenantID: "acme", Limit: 100})
	var hlcSide, legacySide []uuid.UUID
	for _, j := range all {
		if j.InHLC {
			hlcSide = append(hlcSide, j.JobID)
		} else {
			legacySide = append(legacySide, j.JobID)
		}
	}
	if len(hlcSide) != 11 || len(legacySide) != 8 {
		t.Fatalf("%d jobs on the HLC side and %d legacy-only, want 11 and 8", len(hlcSide), len(legacySide))
	}
	for _, window := range []int{1, 3, 4, 5, 7} {
		want := slices.Concat(hlcSide[len(hlcSide)-window:], legacySide[len(legacySide)-window:])
		for _, limit := range []int{2, 100} {
			got := listAll(t, db, driver.ListParams{TenantID: "acme", PayloadContains: "{", SearchWindow: window, Limit: limit})
			ids := make([]uuid.UUID, len(got))
			for i, j := range got {
				ids[i] = j.JobID
			}
			if !slices.Equal(ids, want) {
				t.Errorf("window %d (limit %d): %v, want %v", window, limit, f.names(got), ids)
			}
		}
	}
}

// testRecentKinds: the distinct kinds of a tenant's newest jobs on each
// side, in byte order, bounded by window and limit; another tenant's kinds
// never.
func testRecentKinds(t *testing.T, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	db := newTarget(t).Open(t)
	searchFixture(t, db)
	for _, c := range []struct {
		p    driver.KindParams
		want []string
	}{
		{driver.KindParams{TenantID: "acme"}, []string{"Audit", "mail.send", "report"}},
		// The newest job of each side: H6 (report) and L2 (report).
		{driver.KindParams{TenantID: "acme", Window: 1}, []string{"report"}},
		// H5, H6 and L1, L2.
		{driver.KindParams{TenantID: "acme", Window: 2}, []string{"mail.send", "report"}},
		{driver.KindParams{TenantID: "acme", Limit: 2}, []string{"Audit", "mail.send"}},
		{driver.KindParams{TenantID: "other"}, []string{"secret.kind"}},
		{driver.KindParams{TenantID: "nobody"}, nil},
	} {
		got, err := db.RecentKinds(ctx, c.p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(c.want) || (len(got) > 0 && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("RecentKinds(%+v) = %q, want %q", c.p, got, c.want)
		}
	}
	for _, bad := range []driver.KindParams{
		{TenantID: "bad tenant"},
		{TenantID: "acme", Window: driver.MaxSearchWindow + 1},
		{TenantID: "acme", Limit: driver.MaxKinds + 1},
		{TenantID: "acme", Limit: -1},
	} {
		if _, err := db.RecentKinds(ctx, bad); !errors.Is(err, driver.ErrInvalidList) {
			t.Errorf("RecentKinds(%+v): %v, want ErrInvalidList", bad, err)
		}
	}
}
