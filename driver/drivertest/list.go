// The listing and tokens areas: driver.Lister (listing and counting jobs)
// and driver.Tokens (API tokens).

package drivertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/queue"
)

// Backend is what the listing tests need of a backend.
type Backend = driver.Driver

// Run runs the suite. open returns a fresh, empty, migrated database for
// each subtest, closed when the subtest ends.
func runListing(t *testing.T, open func(t *testing.T) Backend) {
	t.Run("list pages in HLC order then legacy order", func(t *testing.T) { testListOrder(t, open(t)) })
	t.Run("newest first reverses each section", func(t *testing.T) { testListNewest(t, open(t)) })
	t.Run("list filters", func(t *testing.T) { testListFilters(t, open(t)) })
	t.Run("count by status", func(t *testing.T) { testCount(t, open(t)) })
	t.Run("tokens", func(t *testing.T) { testTokens(t, open(t)) })
}

// fixture enqueues, for tenant acme: L1, L2 in legacy mode (legacy table
// only), D1 in dual-write (both sides), H1, H2, H3 in HLC-only mode (HLC
// side only); and for tenant other, O1 (legacy) and O2 (HLC only). Each
// one millisecond after the previous, on one node's clock.
type fixture struct {
	q    *queue.Queue
	wall *hlc.ManualClock
	ids  map[string]uuid.UUID
}

func newFixture(t *testing.T, db Backend) *fixture {
	t.Helper()
	ctx := context.Background()
	clock, wall := hlctest.ManualClock(t, time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC).UnixMilli(), hlc.Config{Node: "list-node", Store: db.HLCState()})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Now: func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{q: q, wall: wall, ids: map[string]uuid.UUID{}}
	steps := []struct {
		mode                  queue.Options
		name, tenant, part, k string
	}{
		{queue.Options{}, "L1", "acme", "", "k.a"},
		{queue.Options{}, "L2", "acme", "p1", "k.b"},
		{queue.Options{}, "O1", "other", "", "k.a"},
		{queue.Options{DualWriteMode: true}, "D1", "acme", "", "k.a"},
		{queue.Options{EnableHlcOrdering: true}, "H1", "acme", "p1", "k.a"},
		{queue.Options{EnableHlcOrdering: true}, "H2", "acme", "", "k.b"},
		{queue.Options{EnableHlcOrdering: true}, "O2", "other", "p1", "k.a"},
		{queue.Options{EnableHlcOrdering: true}, "H3", "acme", "p2", "k.a"},
	}
	for _, s := range steps {
		if err := q.SetOptions(ctx, s.mode); err != nil {
			t.Fatal(err)
		}
		wall.Advance(time.Millisecond)
		res, err := q.Enqueue(ctx, queue.Job{TenantID: s.tenant, PartitionKey: s.part, Kind: s.k, Payload: []byte(`{"name":"` + s.name + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[s.name] = res.JobID
	}
	return f
}

// cancel cancels the fixture's jobs of those names.
func (f *fixture) cancel(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := f.q.Cancel(context.Background(), f.ids[n], "test"); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) names(jobs []queue.JobInfo) []string {
	byID := map[uuid.UUID]string{}
	for n, id := range f.ids {
		byID[id] = n
	}
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = byID[j.JobID]
		if out[i] == "" {
			out[i] = j.JobID.String()
		}
	}
	return out
}

// listAll pages through p with the given page size.
func listAll(t *testing.T, l driver.Lister, p driver.ListParams) []queue.JobInfo {
	t.Helper()
	var all []queue.JobInfo
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		page, next, err := l.ListJobs(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > p.Limit && p.Limit > 0 {
			t.Fatalf("page of %d jobs, limit %d", len(page), p.Limit)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		p.Cursor = next
	}
}

// testListNewest: newest first lists the HLC side by t_hlc descending,
// then legacy-only jobs by created_at descending, whatever the page size,
// with filters as in the other order; its cursors continue its order.
func testListNewest(t *testing.T, db Backend) {
	f := newFixture(t, db)
	want := []string{"H3", "H2", "H1", "D1", "L2", "L1"}
	for _, limit := range []int{1, 2, 3, 4, 6, 100} {
		got := f.names(listAll(t, db, driver.ListParams{TenantID: "acme", Limit: limit, Newest: true}))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("limit %d: listed %v, want %v", limit, got, want)
		}
	}
	// A bare t_hlc starts before it.
	oldest := listAll(t, db, driver.ListParams{TenantID: "acme", Limit: 100})
	page, _, err := db.ListJobs(context.Background(), driver.ListParams{TenantID: "acme", Cursor: oldest[2].Chain.THLC, Limit: 5, Newest: true})
	if err != nil || !reflect.DeepEqual(f.names(page), []string{"H1", "D1", "L2", "L1"}) {
		t.Fatalf("before a bare t_hlc: %v, %v", f.names(page), err)
	}
	if got := f.names(listAll(t, db, driver.ListParams{TenantID: "other", Limit: 1, Newest: true})); !reflect.DeepEqual(got, []string{"O2", "O1"}) {
		t.Fatalf("tenant other, newest first (its HLC job, then its legacy-only one): %v", got)
	}
}

func testListOrder(t *testing.T, db Backend) {
	f := newFixture(t, db)
	want := []string{"D1", "H1", "H2", "H3", "L1", "L2"}
	for _, limit := range []int{1, 2, 3, 4, 6, 100} {
		got := f.names(listAll(t, db, driver.ListParams{TenantID: "acme", Limit: limit}))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("limit %d: listed %v, want %v", limit, got, want)
		}
	}
	jobs := listAll(t, db, driver.ListParams{TenantID: "acme", Limit: 100})
	var prev string
	for _, j := range jobs[:4] {
		if !j.InHLC || j.Chain == nil || j.Chain.THLC <= prev {
			t.Fatalf("HLC section out of t_hlc order or without chain entry: %+v", j)
		}
		prev = j.Chain.THLC
		got, err := f.q.Get(context.Background(), j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Chain.THLC != j.Chain.THLC || got.Chain.Link != j.Chain.Link || got.Chain.Pos != j.Chain.Pos || got.PayloadHash != j.PayloadHash ||
			got.Status != j.Status || got.Kind != j.Kind || got.PartitionKey != j.PartitionKey || got.InLegacy != j.InLegacy {
			t.Fatalf("listed %+v\n   Get %+v", j, got)
		}
		if j.Payload != nil {
			t.Fatalf("payload listed without WithPayload: %s", j.Payload)
		}
	}
	if !jobs[0].InLegacy || jobs[1].InLegacy {
		t.Fatalf("D1 should be on both sides, H1 on the HLC side only: %+v %+v", jobs[0], jobs[1])
	}
	for _, j := range jobs[4:] {
		if j.InHLC || !j.InLegacy || j.Chain != nil || j.TenantID != "acme" {
			t.Fatalf("legacy section: %+v", j)
		}
	}
	withPayload := listAll(t, db, driver.ListParams{TenantID: "acme", Limit: 100, WithPayload: true})
	for i, j := range withPayload {
		// PostgreSQL's legacy table stores jsonb, which reads back with
		// its own spacing: compare canonical forms.
		got, err := chain.Canonicalize(j.Payload)
		if want := `{"name":"` + want[i] + `"}`; err != nil || string(got) != want {
			t.Fatalf("payload %s, want %s", j.Payload, want)
		}
	}

	// A bare t_hlc starts after it.
	page, _, err := db.ListJobs(context.Background(), driver.ListParams{TenantID: "acme", Cursor: jobs[0].Chain.THLC, Limit: 2})
	if err != nil || !reflect.DeepEqual(f.names(page), []string{"H1", "H2"}) {
		t.Fatalf("after a bare t_hlc: %v, %v", f.names(page), err)
	}
	// The other tenant sees only its own.
	if got := f.names(listAll(t, db, driver.ListParams{TenantID: "other", Limit: 1})); !reflect.DeepEqual(got, []string{"O2", "O1"}) {
		t.Fatalf("tenant other: %v", got)
	}
	if got := listAll(t, db, driver.ListParams{TenantID: "nobody", Limit: 10}); len(got) != 0 {
		t.Fatalf("unknown tenant: %v", got)
	}
	for _, bad := range []driver.ListParams{
		{TenantID: "acme", Cursor: "h:zzz:" + uuid.NewString()},
		{TenantID: "acme", Cursor: "l:12:not-a-uuid"},
		{TenantID: "acme", Cursor: "garbage"},
		{TenantID: "acme", Limit: 100000},
		{TenantID: "acme", Statuses: []queue.Status{"sleeping"}},
		{TenantID: "bad tenant"},
		{TenantID: "acme", Kind: "bad kind!"},
	} {
		if _, _, err := db.ListJobs(context.Background(), bad); !errors.Is(err, driver.ErrInvalidList) {
			t.Errorf("ListJobs(%+v): %v, want ErrInvalidList", bad, err)
		}
	}
}

func testListFilters(t *testing.T, db Backend) {
	f := newFixture(t, db)
	f.cancel(t, "H3", "L2")
	empty, p1 := "", "p1"
	for _, c := range []struct {
		name string
		p    driver.ListParams
		want []string
	}{
		{"cancelled", driver.ListParams{Statuses: []queue.Status{queue.StatusCancelled}}, []string{"H3", "L2"}},
		{"pending or cancelled", driver.ListParams{Statuses: []queue.Status{queue.StatusPending, queue.StatusCancelled}}, []string{"D1", "H1", "H2", "H3", "L1", "L2"}},
		{"running", driver.ListParams{Statuses: []queue.Status{queue.StatusRunning}}, []string{}},
		{"kind", driver.ListParams{Kind: "k.b"}, []string{"H2", "L2"}},
		{"default partition", driver.ListParams{Partition: &empty}, []string{"D1", "H2", "L1"}},
		{"partition p1", driver.ListParams{Partition: &p1}, []string{"H1", "L2"}},
		{"kind and partition and status", driver.ListParams{Kind: "k.a", Partition: &empty, Statuses: []queue.Status{queue.StatusPending}}, []string{"D1", "L1"}},
	} {
		for _, limit := range []int{1, 100} {
			p := c.p
			p.TenantID, p.Limit = "acme", limit
			got := f.names(listAll(t, db, p))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s (limit %d): %v, want %v", c.name, limit, got, c.want)
			}
		}
	}
}

func testCount(t *testing.T, db Backend) {
	ctx := context.Background()
	f := newFixture(t, db)
	f.cancel(t, "D1", "L2") // D1 is on both sides: counted once
	counts := func(p driver.CountParams) map[string]int64 {
		t.Helper()
		got, err := db.CountByStatus(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, c := range got {
			out[c.TenantID+"/"+string(c.Status)] += c.Count
		}
		return out
	}
	if got, want := counts(driver.CountParams{}), map[string]int64{"acme/pending": 4, "acme/cancelled": 2, "other/pending": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("all: %v, want %v", got, want)
	}
	if got, want := counts(driver.CountParams{TenantID: "acme"}), map[string]int64{"acme/pending": 4, "acme/cancelled": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("acme: %v, want %v", got, want)
	}
	unfinished := []queue.Status{queue.StatusPending, queue.StatusScheduled, queue.StatusRunning}
	if got, want := counts(driver.CountParams{Statuses: unfinished}), map[string]int64{"acme/pending": 4, "other/pending": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("unfinished: %v, want %v", got, want)
	}
	leases, err := f.q.Dequeue(ctx, queue.DequeueOptions{TenantID: "other", Limit: 1})
	if err != nil || len(leases) != 1 {
		t.Fatal(leases, err)
	}
	if got, want := counts(driver.CountParams{TenantID: "other", Statuses: unfinished}), map[string]int64{"other/pending": 1, "other/running": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("after a dequeue: %v, want %v", got, want)
	}
}

func testTokens(t *testing.T, db Backend) {
	ctx := context.Background()
	now := time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC)
	admin := driver.APIToken{ID: "tok_admin", Hash: sha256.Sum256([]byte("secret-admin")), Admin: true, Name: "ops", CreatedAt: now}
	acme := driver.APIToken{ID: "tok_acme", Hash: sha256.Sum256([]byte("secret-acme")), TenantID: "acme", Name: "ci", CreatedAt: now.Add(time.Second),
		ExpiresAt: now.Add(30 * 24 * time.Hour)} // read back as stored, and the admin token's zero as never
	for _, tok := range []driver.APIToken{admin, acme} {
		if err := db.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	dupID := acme
	dupID.Hash = sha256.Sum256([]byte("other"))
	if err := db.CreateToken(ctx, dupID); err == nil {
		t.Fatal("a second token with the same id was stored")
	}
	dupHash := acme
	dupHash.ID = "tok_other"
	if err := db.CreateToken(ctx, dupHash); err == nil {
		t.Fatal("a second token with the same hash was stored")
	}
	got, err := db.TokenByHash(ctx, sha256.Sum256([]byte("secret-acme")))
	if err != nil || !sameToken(got, acme) {
		t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, acme)
	}
	if _, err := db.TokenByHash(ctx, sha256.Sum256([]byte("wrong"))); !errors.Is(err, driver.ErrTokenNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if err := db.RevokeToken(ctx, "tok_acme", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, "tok_acme", now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeToken(ctx, "tok_nope", now); !errors.Is(err, driver.ErrTokenNotFound) {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	list, err := db.ListTokens(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "tok_admin" || list[1].ID != "tok_acme" {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	if !list[1].RevokedAt.Equal(now.Add(time.Hour)) || !list[0].RevokedAt.IsZero() || !list[0].Admin || list[0].TenantID != "" ||
		!list[1].ExpiresAt.Equal(acme.ExpiresAt) || !list[0].ExpiresAt.IsZero() {
		t.Fatalf("ListTokens = %+v", list)
	}
}

func sameToken(a, b driver.APIToken) bool {
	return a.ID == b.ID && a.Hash == b.Hash && a.TenantID == b.TenantID && a.Admin == b.Admin && a.Name == b.Name &&
		a.CreatedAt.Equal(b.CreatedAt) && a.RevokedAt.Equal(b.RevokedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}
