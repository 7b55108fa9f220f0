package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql for goose
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/migrations"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/store/postgres"
)

const day = 24 * time.Hour

// partitioned is a migrated database whose scheduler_log has, after the
// first partition (which ends at bound, a UTC midnight after the
// migration ran), one partition a day for three days, made by
// EnsureLogPartitions, and a queue whose clock the test moves (HLC only).
type partitioned struct {
	t     *testing.T
	db    *postgres.DB
	q     *queue.Queue
	wall  *hlc.ManualClock
	bound time.Time
}

func newPartitioned(t *testing.T) *partitioned {
	t.Helper()
	p := &partitioned{t: t, db: openMigrated(t)}
	p.init()
	return p
}

// init reads the first partition's bound, makes the three daily
// partitions after it and the queue.
func (p *partitioned) init() {
	t, db, ctx := p.t, p.db, context.Background()
	t.Helper()
	var hi string
	if err := db.Pool.QueryRow(ctx, `SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c
		WHERE c.oid = 'scheduler.scheduler_log_initial'::regclass`).Scan(&hi); err != nil {
		t.Fatal(err)
	}
	var ms int64
	if _, err := fmt.Sscanf(hi, "FOR VALUES FROM (MINVALUE) TO ('%d')", &ms); err != nil {
		t.Fatalf("the first partition's bounds: %q: %v", hi, err)
	}
	p.bound = time.UnixMilli(ms).UTC()
	if !p.bound.Equal(p.bound.Truncate(day)) {
		t.Fatalf("the first partition ends at %s, not at a UTC midnight", p.bound)
	}
	res, err := db.EnsureLogPartitions(ctx, p.bound.Add(-12*time.Hour), day)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{p.name(0), p.name(1), p.name(2)}; !slices.Equal(res.Created, want) || len(res.LeftToDefault) != 0 {
		t.Fatalf("EnsureLogPartitions made %q and left %v to the default; want %q and none", res.Created, res.LeftToDefault, want)
	}
	clock, wall := hlctest.ManualClock(t, p.bound.Add(time.Hour).UnixMilli(), hlc.Config{Node: "node-a"})
	p.wall = wall
	p.q, err = queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Options: queue.Options{EnableHlcOrdering: true},
		Now:     func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
}

// name is the name of the partition of day d after bound.
func (p *partitioned) name(d int) string {
	return "scheduler_log_p" + p.bound.Add(time.Duration(d)*day).Format("20060102")
}

// fill enqueues n jobs of tenant's default chain at hour 1 of day d, and
// marks every job finished.
func (p *partitioned) fill(tenant string, d, n int) {
	p.t.Helper()
	ctx := context.Background()
	if at := p.bound.Add(time.Duration(d)*day + time.Hour).UnixMilli(); at > p.wall.UnixMilli() {
		p.wall.Set(at)
	}
	jobs := make([]queue.Job, n)
	for i := range jobs {
		jobs[i] = queue.Job{TenantID: tenant, Kind: "report", Payload: []byte(fmt.Sprintf(`{"day":%d,"n":%d}`, d, i))}
	}
	if _, err := p.q.EnqueueMany(ctx, jobs); err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.db.Pool.Exec(ctx, `UPDATE scheduler.job_state SET status = 'succeeded'`); err != nil {
		p.t.Fatal(err)
	}
}

// partitions lists scheduler_log's partitions (pg_inherits), by name.
func (p *partitioned) partitions() []string {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), `SELECT inhrelid::regclass::text FROM pg_inherits
		WHERE inhparent = 'scheduler.scheduler_log'::regclass ORDER BY 1`)
	if err != nil {
		p.t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		p.t.Fatal(err)
	}
	for i := range names {
		names[i] = strings.TrimPrefix(names[i], "scheduler.")
	}
	return names
}

// entries reads every scheduler_log row of tenant, by chain position,
// whole, with the partition that holds it.
func (p *partitioned) entries(tenant string) []string {
	p.t.Helper()
	rows, err := p.db.Pool.Query(context.Background(), `SELECT l.tableoid::regclass::text || ' ' || row_to_json(l)::text
		FROM scheduler.scheduler_log l WHERE tenant_id = $1 ORDER BY partition_key, chain_pos`, tenant)
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// archive records chain k's archive [from, to) (its tree fields are not
// looked at by DropArchived) and drops it.
func (p *partitioned) archive(k chain.Key, from, to int64) (driver.DropResult, error) {
	p.t.Helper()
	ctx := context.Background()
	var last []byte
	var lastHLC string
	if err := p.db.Pool.QueryRow(ctx, `SELECT link, t_hlc FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos = $3`,
		k.TenantID, k.PartitionKey, to-1).Scan(&last, &lastHLC); err != nil {
		p.t.Fatal(err)
	}
	a := &driver.ChainArchive{Key: k, StartPos: from, EndPos: to, LastTHLC: lastHLC, Checkpoint: []byte("checkpoint\n"),
		ArchivedAt: time.UnixMilli(p.wall.UnixMilli()).UTC()}
	copy(a.LastLink[:], last)
	if from > 0 {
		var prev []byte
		if err := p.db.Pool.QueryRow(ctx, `SELECT prev_link FROM scheduler.scheduler_log WHERE tenant_id = $1 AND partition_key = $2 AND chain_pos = $3`,
			k.TenantID, k.PartitionKey, from).Scan(&prev); err != nil {
			p.t.Fatal(err)
		}
		copy(a.FirstPrevLink[:], prev)
	}
	store := p.db.AuditStore().(driver.LogArchive)
	if err := store.RecordArchive(ctx, a); err != nil {
		p.t.Fatal(err)
	}
	return store.DropArchived(ctx, driver.DropParams{Key: k, StartPos: from, Now: a.ArchivedAt})
}

// without returns names without the ones in drop.
func without(names []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
}

// TestDropArchivedDropsWholePartitions archives a chain's first two days,
// each in a partition of its own: both partitions are detached and
// dropped, and what the chain keeps (its third day) is untouched, row for
// row, and still in its partition.
func TestDropArchivedDropsWholePartitions(t *testing.T) {
	p := newPartitioned(t)
	const n = 40
	for d := range 3 {
		p.fill("acme", d, n)
	}
	all := p.entries("acme")
	before := p.partitions()
	res, err := p.archive(chain.Key{TenantID: "acme"}, 0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsDropped != 2 || res.Entries != 2*n || res.Jobs != 2*n {
		t.Fatalf("DropArchived = %+v; want 2 partitions, %d entries and jobs", res, 2*n)
	}
	if got, want := p.partitions(), without(before, p.name(0), p.name(1)); !slices.Equal(got, want) {
		t.Fatalf("partitions after the drop: %q; want %q", got, want)
	}
	if got := p.entries("acme"); !slices.Equal(got, all[2*n:]) {
		t.Fatalf("the retained entries changed:\n%q\nwant\n%q", got, all[2*n:])
	}
	for _, e := range all[2*n:] {
		if !strings.HasPrefix(e, "scheduler."+p.name(2)+" ") {
			t.Fatalf("retained entry outside its day's partition: %s", e)
		}
	}
	archives, err := p.db.AuditStore().(driver.LogArchive).ChainArchives(context.Background(), chain.Key{TenantID: "acme"})
	if err != nil || len(archives) != 1 || archives[0].DroppedEntries != 2*n || archives[0].DroppedAt.IsZero() {
		t.Fatalf("ChainArchives = %+v, %v; want one dropped archive of %d entries", archives, err, 2*n)
	}
}

// TestDropArchivedDeletesUnalignedRanges: a range that ends inside a
// partition is deleted row by row; the next range, which takes the rest
// of that partition and the next whole one, drops both partitions.
func TestDropArchivedDeletesUnalignedRanges(t *testing.T) {
	p := newPartitioned(t)
	const n = 40
	for d := range 3 {
		p.fill("acme", d, n)
	}
	all := p.entries("acme")
	before := p.partitions()
	k := chain.Key{TenantID: "acme"}
	res, err := p.archive(k, 0, n/2)
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsDropped != 0 || res.Entries != n/2 {
		t.Fatalf("DropArchived of half a partition = %+v; want no partition and %d entries", res, n/2)
	}
	if got := p.partitions(); !slices.Equal(got, before) {
		t.Fatalf("partitions after deleting half of one: %q; want %q", got, before)
	}
	if got := p.entries("acme"); !slices.Equal(got, all[n/2:]) {
		t.Fatalf("entries after deleting [0, %d): %d, want the %d after", n/2, len(got), len(all)-n/2)
	}
	res, err = p.archive(k, n/2, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsDropped != 2 || res.Entries != 2*n-n/2 {
		t.Fatalf("DropArchived of the rest of two partitions = %+v; want 2 partitions and %d entries", res, 2*n-n/2)
	}
	if got, want := p.partitions(), without(before, p.name(0), p.name(1)); !slices.Equal(got, want) {
		t.Fatalf("partitions: %q; want %q", got, want)
	}
	if got := p.entries("acme"); !slices.Equal(got, all[2*n:]) {
		t.Fatalf("the retained entries changed")
	}
}

// TestDropArchivedKeepsSharedPartitions: a partition that also holds
// another tenant's entry (sorting after or before the chain's tenant), or
// another chain's of the same tenant, is never dropped; the range's
// entries are deleted from it. A range that reaches the chain's head is
// not dropped at all.
func TestDropArchivedKeepsSharedPartitions(t *testing.T) {
	p := newPartitioned(t)
	ctx := context.Background()
	if res, err := p.db.EnsureLogPartitions(ctx, p.bound.Add(12*time.Hour), day); err != nil || !slices.Equal(res.Created, []string{p.name(3)}) {
		t.Fatalf("EnsureLogPartitions = %+v, %v; want day 3 made", res, err)
	}
	const n = 30
	p.fill("acme", 0, n)
	p.fill("zeta", 0, 1) // day 0: a tenant after acme
	p.fill("acme", 1, n)
	if _, err := p.q.Enqueue(ctx, queue.Job{TenantID: "acme", PartitionKey: "other", Kind: "report", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err) // day 1: another chain of acme
	}
	p.fill("acme", 2, n)
	p.fill("aaaa", 2, 1) // day 2: a tenant before acme
	p.fill("acme", 3, n)
	before := p.partitions()
	zeta, aaaa, acme := p.entries("zeta"), p.entries("aaaa"), p.entries("acme")
	k := chain.Key{TenantID: "acme"}
	res, err := p.archive(k, 0, 3*n)
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsDropped != 0 || res.Entries != 3*n {
		t.Fatalf("DropArchived = %+v; want no partition, %d entries", res, 3*n)
	}
	if got := p.partitions(); !slices.Equal(got, before) {
		t.Fatalf("partitions: %q; want %q", got, before)
	}
	if got := p.entries("zeta"); !slices.Equal(got, zeta) {
		t.Fatalf("another tenant's entry changed: %q, want %q", got, zeta)
	}
	if got := p.entries("aaaa"); !slices.Equal(got, aaaa) {
		t.Fatalf("another tenant's entry changed: %q, want %q", got, aaaa)
	}
	// acme keeps its other chain's entry and day 3.
	if got, want := p.entries("acme"), acme[3*n:]; !slices.Equal(got, want) || !strings.Contains(got[len(got)-1], `"partition_key":"other"`) {
		t.Fatalf("acme keeps %d entries, want its day 3 and its other chain's entry (%d)", len(got), len(want))
	}
	// The rest of the chain, up to its head: refused, nothing dropped (the
	// next append links to the head).
	kept := p.entries("acme")
	if res, err = p.archive(k, 3*n, 4*n); !errors.Is(err, driver.ErrArchiveRange) || res.Entries != 0 {
		t.Fatalf("DropArchived up to the head = %+v, %v; want ErrArchiveRange", res, err)
	}
	if got := p.partitions(); !slices.Equal(got, before) {
		t.Fatalf("partitions: %q; want %q", got, before)
	}
	if got := p.entries("acme"); !slices.Equal(got, kept) {
		t.Fatalf("a refused drop changed acme's entries")
	}
}

// TestDropArchivedFallsBackWithoutTheLock: while a transaction reads
// scheduler_log, the lock a detach needs is not had in time; the whole
// partitions are then deleted from instead, and the drop succeeds.
func TestDropArchivedFallsBackWithoutTheLock(t *testing.T) {
	postgres.SetLogPartitionLockTimeout(t, 50*time.Millisecond)
	p := newPartitioned(t)
	const n = 20
	for d := range 2 {
		p.fill("acme", d, n)
	}
	ctx := context.Background()
	reader, err := p.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	var seen int
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM scheduler.scheduler_log`).Scan(&seen); err != nil || seen != 2*n {
		t.Fatalf("reader saw %d entries, %v", seen, err)
	}
	before := p.partitions()
	res, err := p.archive(chain.Key{TenantID: "acme"}, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	if res.PartitionsDropped != 0 || res.Entries != n {
		t.Fatalf("DropArchived under a reader = %+v; want no partition, %d entries", res, n)
	}
	if got := p.partitions(); !slices.Equal(got, before) {
		t.Fatalf("partitions: %q; want %q", got, before)
	}
	if err := reader.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.entries("acme"); len(got) != n {
		t.Fatalf("%d entries left, want %d", len(got), n)
	}
}

// TestEnsureLogPartitions: partitions follow the last one, a period each,
// up to LogPartitionsAhead periods ahead; calling again makes nothing; a
// range the default partition holds rows of, or one that began already,
// gets no partition, and the entries there stay readable.
func TestEnsureLogPartitions(t *testing.T) {
	p := newPartitioned(t)
	ctx := context.Background()
	// Again at the same moment: nothing to make.
	if res, err := p.db.EnsureLogPartitions(ctx, p.bound.Add(-12*time.Hour), day); err != nil || len(res.Created) != 0 || len(res.LeftToDefault) != 0 {
		t.Fatalf("EnsureLogPartitions again = %+v, %v; want nothing done", res, err)
	}
	// Entries of day 4, past the partitions, go to the default partition.
	p.fill("acme", 4, 3)
	for _, e := range p.entries("acme") {
		if !strings.HasPrefix(e, "scheduler.scheduler_log_default ") {
			t.Fatalf("an entry of day 4 is not in the default partition: %s", e)
		}
	}
	// Two days later: day 3 is made; day 4, whose entries the default
	// partition holds, is left to it; day 5 is made.
	res, err := p.db.EnsureLogPartitions(ctx, p.bound.Add(2*day+12*time.Hour), day)
	if err != nil {
		t.Fatal(err)
	}
	day4 := [2]time.Time{p.bound.Add(4 * day), p.bound.Add(5 * day)}
	if want := []string{p.name(3), p.name(5)}; !slices.Equal(res.Created, want) || !slices.Equal(res.LeftToDefault, [][2]time.Time{day4}) {
		t.Fatalf("EnsureLogPartitions = %+v; want %q made and day 4 %v left to the default", res, want, day4)
	}
	// Long after: the days from the last partition's end up to now are
	// left to the default; the coming ones are made, from the first
	// midnight a minute after now.
	now := p.bound.Add(20*day + 23*time.Hour + 59*time.Minute + 30*time.Second)
	res, err = p.db.EnsureLogPartitions(ctx, now, day)
	if err != nil {
		t.Fatal(err)
	}
	gap := [2]time.Time{p.bound.Add(6 * day), p.bound.Add(22 * day)}
	if want := []string{p.name(22), p.name(23)}; !slices.Equal(res.Created, want) || !slices.Equal(res.LeftToDefault, [][2]time.Time{gap}) {
		t.Fatalf("EnsureLogPartitions after a gap = %+v; want %q made, %v left to the default", res, want, gap)
	}
	want := []string{"scheduler_log_default", "scheduler_log_initial", p.name(0), p.name(1), p.name(2), p.name(3), p.name(5), p.name(22), p.name(23)}
	slices.Sort(want)
	if got := p.partitions(); !slices.Equal(got, want) {
		t.Fatalf("partitions: %q; want %q", got, want)
	}
	// Entries go where their t_hlc says, and the chain verifies across
	// partitions.
	p.fill("acme", 5, 2)
	p.fill("acme", 10, 2)
	p.fill("acme", 23, 2)
	var where []string
	for _, e := range p.entries("acme") {
		where = append(where, strings.TrimPrefix(strings.Fields(e)[0], "scheduler."))
	}
	if want := []string{"scheduler_log_default", "scheduler_log_default", "scheduler_log_default", p.name(5), p.name(5),
		"scheduler_log_default", "scheduler_log_default", p.name(23), p.name(23)}; !slices.Equal(where, want) {
		t.Fatalf("entries are in %q; want %q", where, want)
	}
	if r, err := audit.Verify(ctx, p.db.AuditStore(), "acme"); err != nil || !r.Valid || r.EntriesChecked != 9 {
		t.Fatalf("verify = %+v, %v", r, err)
	}
}

// TestLogPartitioningMigrates: a database with entries in an
// unpartitioned scheduler_log (migration 020), one tenant's from the
// past, another's from days ahead of the clock, migrates to the
// partitioned table without losing or changing an entry: all of them are
// in the first partition, which ends at a UTC midnight after the last of
// them, the chains still verify, and appending goes on. Migrating down
// gives the unpartitioned table back, every entry in it.
func TestLogPartitioningMigrates(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	gp := migrator(t, url)
	if _, err := gp.UpTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// Entries of the past, and of two days after the real clock.
	ahead := time.Now().Add(2 * day).UnixMilli()
	clock, wall := hlctest.ManualClock(t, 1_704_067_200_000, hlc.Config{Node: "node-a"})
	q, err := queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true},
		Now:     func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	enqueue := func(tenant string, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := q.Enqueue(ctx, queue.Job{TenantID: tenant, PartitionKey: fmt.Sprint("p", i%2), Kind: "report",
				Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)), IdempotencyKey: fmt.Sprintf("ordo.periodic:x@%d", i)}); err != nil {
				t.Fatal(err)
			}
			wall.Advance(time.Second)
		}
	}
	enqueue("acme", 0, 50)
	wall.Set(ahead)
	enqueue("zeta", 0, 10)
	rows := func() []string {
		t.Helper()
		rs, err := db.Pool.Query(ctx, `SELECT row_to_json(l)::text FROM scheduler.scheduler_log l ORDER BY seq_bigint`)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := rows()
	if len(before) != 60 {
		t.Fatalf("%d entries before the migration, want 60", len(before))
	}

	if _, err := gp.UpTo(ctx, 21); err != nil {
		t.Fatal(err)
	}
	if after := rows(); !slices.Equal(after, before) {
		t.Fatalf("the entries changed in the migration:\n%q\nwant\n%q", after, before)
	}
	var kind string
	var inInitial, inDefault int
	var bound string
	if err := db.Pool.QueryRow(ctx, `SELECT relkind::text, (SELECT count(*) FROM scheduler.scheduler_log_initial),
			(SELECT count(*) FROM scheduler.scheduler_log_default),
			(SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = 'scheduler.scheduler_log_initial'::regclass)
		FROM pg_class WHERE oid = 'scheduler.scheduler_log'::regclass`).Scan(&kind, &inInitial, &inDefault, &bound); err != nil {
		t.Fatal(err)
	}
	var boundMs int64
	if _, err := fmt.Sscanf(bound, "FOR VALUES FROM (MINVALUE) TO ('%d')", &boundMs); err != nil {
		t.Fatalf("bound %q: %v", bound, err)
	}
	if kind != "p" || inInitial != 60 || inDefault != 0 || boundMs <= wall.UnixMilli() || boundMs%day.Milliseconds() != 0 {
		t.Fatalf("after the migration: relkind %s, %d entries in the first partition, %d in the default, bound %s; want p, 60, 0, a midnight after %d",
			kind, inInitial, inDefault, bound, wall.UnixMilli())
	}
	for _, tenant := range []string{"acme", "zeta"} {
		if r, err := audit.Verify(ctx, db.AuditStore(), tenant); err != nil || !r.Valid {
			t.Fatalf("verify %s after the migration = %+v, %v", tenant, r, err)
		}
	}
	// The chains go on, through the partitioned table, on the same pool:
	// its statements, prepared against the table of before, are planned
	// again by the server.
	q, err = queue.New(ctx, queue.Config{Backend: db, Clock: clock, SkipReconcile: true,
		Options: queue.Options{EnableHlcOrdering: true, DualWriteMode: true},
		Now:     func() time.Time { return time.UnixMilli(wall.UnixMilli()) }})
	if err != nil {
		t.Fatal(err)
	}
	wall.Set(boundMs + day.Milliseconds())
	enqueue("acme", 50, 54)
	if r, err := audit.Verify(ctx, db.AuditStore(), "acme"); err != nil || !r.Valid || r.EntriesChecked != 54 {
		t.Fatalf("verify acme after appending = %+v, %v", r, err)
	}
	var inDefaultNow int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM scheduler.scheduler_log_default`).Scan(&inDefaultNow); err != nil || inDefaultNow != 4 {
		t.Fatalf("%d entries in the default partition, %v; want the 4 past the first partition", inDefaultNow, err)
	}
	all := rows()

	// And back.
	if _, err := gp.DownTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if got := rows(); !slices.Equal(got, all) {
		t.Fatalf("migrating down changed the entries: %d, want %d", len(got), len(all))
	}
	checkUnpartitioned(t, db)
}

// migrator applies the embedded PostgreSQL migrations to the database at
// url, as ordo migrate would, one version at a time if asked.
func migrator(t *testing.T, url string) *goose.Provider {
	t.Helper()
	std, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { std.Close() })
	st, err := database.NewStore(database.DialectPostgres, migrations.VersionTable)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := migrations.Files(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := goose.NewProvider("", std, fsys, goose.WithDisableGlobalRegistry(true), goose.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	return gp
}

// checkUnpartitioned fails unless scheduler_log is a plain table keyed by
// seq_bigint, as migration 020 left it.
func checkUnpartitioned(t *testing.T, db *postgres.DB) {
	t.Helper()
	var pkey string
	if err := db.Pool.QueryRow(context.Background(), `SELECT relkind::text || ' ' || (SELECT pg_get_constraintdef(oid) FROM pg_constraint
			WHERE conrelid = 'scheduler.scheduler_log'::regclass AND conname = 'scheduler_log_pkey')
		FROM pg_class WHERE oid = 'scheduler.scheduler_log'::regclass`).Scan(&pkey); err != nil || pkey != "r PRIMARY KEY (seq_bigint)" {
		t.Fatalf("after migrating down: %q, %v; want a plain table keyed by seq_bigint", pkey, err)
	}
}

// TestLogPartitioningMigratesDownWithoutTheFirstPartition: when the first
// partition is gone (all of its entries archived and dropped), migrating
// down makes the unpartitioned table of the default partition, with every
// entry of the others.
func TestLogPartitioningMigratesDownWithoutTheFirstPartition(t *testing.T) {
	ctx := context.Background()
	url := testdb.NewDatabase(t)
	gp := migrator(t, url)
	if _, err := gp.Up(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := &partitioned{t: t, db: db}
	p.init()
	p.fill("acme", 0, 5) // in the first daily partition
	p.fill("acme", 9, 5) // in the default partition
	before := p.entries("acme")
	if _, err := db.Pool.Exec(ctx, `DROP TABLE scheduler.scheduler_log_initial`); err != nil {
		t.Fatal(err)
	}
	if _, err := gp.DownTo(ctx, 20); err != nil {
		t.Fatal(err)
	}
	var after []string
	for _, e := range p.entries("acme") {
		after = append(after, strings.Replace(e, "scheduler.scheduler_log ", "", 1))
	}
	var want []string
	for _, e := range before {
		_, row, _ := strings.Cut(e, " ")
		want = append(want, row)
	}
	if !slices.Equal(after, want) {
		t.Fatalf("migrating down changed the entries:\n%q\nwant\n%q", after, want)
	}
	checkUnpartitioned(t, db)
}
