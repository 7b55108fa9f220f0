package driver

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Insights is what the dashboard's charts, queues page and periodic jobs
// page read (migrations 012_activity and 013_periodic_index): per-minute
// activity, its rollup, per-kind counts and periodic occurrences.
type Insights interface {
	// ActivityMinutes returns what happened in each minute of
	// [p.From, p.To) (both truncated to the minute) that had any activity,
	// oldest first: from the rollup for the minutes it has recorded
	// (RollupActivity), from the job tables for later ones. Tenant "" sums
	// every tenant.
	ActivityMinutes(ctx context.Context, p ActivityParams) ([]ActivityMinute, error)

	// RollupActivity records the minutes that have settled since the last
	// rollup (RollupParams.Window) for every tenant, in one transaction,
	// and deletes the recorded minutes older than p.Keep. Concurrent calls
	// are serialised; a minute is recorded once, so retention pruning the
	// jobs it counted later changes nothing.
	RollupActivity(ctx context.Context, p RollupParams) (RollupResult, error)

	// KindCounts counts one tenant's jobs by kind: pending, scheduled and
	// running now, and succeeded and failed at or after p.Since. Each job
	// counts once, whichever sides hold it. Sorted by kind.
	KindCounts(ctx context.Context, p KindCountParams) ([]KindCount, error)

	// LastPeriodic finds the latest occurrence of the periodic job name of
	// tenant that has a log entry, by the occurrence time in its
	// idempotency key (PeriodicKey); ok is false when there is none. Only
	// the log keeps idempotency keys, so jobs enqueued in legacy mode are
	// not found.
	LastPeriodic(ctx context.Context, tenant, name string) (run PeriodicRun, ok bool, err error)
}

// Defaults of RollupParams.
const (
	// DefaultActivitySettle is how long after a minute ends the rollup
	// waits before recording it for good: the transactions stamped in the
	// minute have committed by then, also on a node whose clock is a
	// little behind the leader's. Later commits stamped in a recorded
	// minute are not counted.
	DefaultActivitySettle = 2 * time.Minute
	// DefaultActivityBackfill is how far back the first rollup starts: the
	// longest window the dashboard charts.
	DefaultActivityBackfill = 24 * time.Hour
	// DefaultActivitySpan bounds the minutes one rollup records, so that
	// catching up after the maintenance leader was away is spread over
	// several short transactions, one per maintenance round.
	DefaultActivitySpan = time.Hour
	// DefaultActivityKeep is how long recorded minutes are kept.
	DefaultActivityKeep = 7 * 24 * time.Hour
)

// ActivityParams selects the minutes ActivityMinutes reads.
type ActivityParams struct {
	TenantID string // "" for every tenant, summed per minute
	From, To time.Time
}

// ActivityMinute is what happened in one minute.
type ActivityMinute struct {
	Minute    time.Time // the minute's start, UTC
	Enqueued  int64     // log entries by t_hlc, and legacy-only jobs by created_at
	Started   int64     // jobs leased for the first time (started_at)
	Succeeded int64     // jobs that succeeded (updated_at of their final state)
	Failed    int64     // jobs that failed for good: no attempt left, or not retryable
	// WaitSumMS and WaitMaxMS are the sum and the largest of the waits of
	// the jobs first started in the minute: from when each was due (the
	// later of its enqueue and its run_at) to its first lease. A sum, not
	// a mean, so that minutes and tenants add up exactly.
	WaitSumMS int64
	WaitMaxMS int64
}

// Add adds o's counts to m (the minute stays m's).
func (m *ActivityMinute) Add(o ActivityMinute) {
	m.Enqueued += o.Enqueued
	m.Started += o.Started
	m.Succeeded += o.Succeeded
	m.Failed += o.Failed
	m.WaitSumMS += o.WaitSumMS
	m.WaitMaxMS = max(m.WaitMaxMS, o.WaitMaxMS)
}

// Empty reports whether nothing happened in m.
func (m ActivityMinute) Empty() bool {
	return m.Enqueued == 0 && m.Started == 0 && m.Succeeded == 0 && m.Failed == 0
}

// MinuteOf is the start of t's minute, UTC.
func MinuteOf(t time.Time) time.Time {
	ms := t.UnixMilli()
	m := ms - ms%60_000
	if ms < 0 && ms%60_000 != 0 {
		m -= 60_000
	}
	return time.UnixMilli(m).UTC()
}

// MergeActivity sums rows by minute, drops empty minutes and sorts the
// result by minute: the backends' rolled-up and computed parts, and
// several tenants' rows, become one series.
func MergeActivity(rows ...[]ActivityMinute) []ActivityMinute {
	byMinute := map[int64]*ActivityMinute{}
	for _, rs := range rows {
		for _, r := range rs {
			k := r.Minute.UnixMilli()
			if byMinute[k] == nil {
				byMinute[k] = &ActivityMinute{Minute: r.Minute.UTC()}
			}
			byMinute[k].Add(r)
		}
	}
	out := make([]ActivityMinute, 0, len(byMinute))
	for _, m := range byMinute {
		if !m.Empty() {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b ActivityMinute) int { return a.Minute.Compare(b.Minute) })
	return out
}

// TenantMinute is one tenant's minute, as a rollup records it.
type TenantMinute struct {
	TenantID string
	ActivityMinute
}

// RollupParams drives RollupActivity; zero durations are the defaults.
type RollupParams struct {
	Now      time.Time
	Settle   time.Duration // DefaultActivitySettle
	Backfill time.Duration // DefaultActivityBackfill
	Span     time.Duration // DefaultActivitySpan
	Keep     time.Duration // DefaultActivityKeep
}

// WithDefaults fills the zero durations.
func (p RollupParams) WithDefaults() RollupParams {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&p.Settle, DefaultActivitySettle}, {&p.Backfill, DefaultActivityBackfill}, {&p.Span, DefaultActivitySpan}, {&p.Keep, DefaultActivityKeep}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	return p
}

// Start is where a first rollup starts: Backfill before Now, on a minute.
func (p RollupParams) Start() time.Time {
	p = p.WithDefaults()
	return MinuteOf(p.Now.Add(-p.Backfill))
}

// Window is the minutes a rollup records after rolledUntil: from
// rolledUntil (or Start, if later) to the last minute that ended Settle ago, at most Span of
// them; from == to when none is due.
func (p RollupParams) Window(rolledUntil time.Time) (from, to time.Time) {
	p = p.WithDefaults()
	// A watermark older than Backfill (the leader was away for days)
	// skips to it: nothing charts those minutes.
	from = MinuteOf(rolledUntil)
	if start := p.Start(); from.Before(start) {
		from = start
	}
	to = MinuteOf(p.Now.Add(-p.Settle))
	if lim := from.Add(p.Span); to.After(lim) {
		to = lim
	}
	if !to.After(from) {
		return from, from
	}
	return from, to
}

// RollupResult says what a rollup recorded.
type RollupResult struct {
	// From and Until bound the minutes recorded, [From, Until); equal
	// when no minute was due. Until is the new watermark.
	From, Until time.Time
	Rows        int // tenant-minutes with activity written
}

// KindCountParams selects KindCounts.
type KindCountParams struct {
	TenantID string
	Since    time.Time // succeeded and failed jobs count from here
}

// KindCount is one kind's jobs of a tenant.
type KindCount struct {
	Kind                        string
	Pending, Scheduled, Running int64
	Succeeded, Failed           int64 // since KindCountParams.Since
}

// AddKindCount adds n jobs of kind in status to counts (a backend's rows
// of kind, status and count become one KindCount per kind).
func AddKindCount(counts []KindCount, kind string, status Status, n int64) []KindCount {
	i := slices.IndexFunc(counts, func(c KindCount) bool { return c.Kind == kind })
	if i < 0 {
		counts = append(counts, KindCount{Kind: kind})
		i = len(counts) - 1
	}
	c := &counts[i]
	switch status {
	case StatusPending:
		c.Pending += n
	case StatusScheduled:
		c.Scheduled += n
	case StatusRunning:
		c.Running += n
	case StatusSucceeded:
		c.Succeeded += n
	case StatusFailed:
		c.Failed += n
	}
	return counts
}

// SortKindCounts sorts counts by kind and returns them.
func SortKindCounts(counts []KindCount) []KindCount {
	slices.SortFunc(counts, func(a, b KindCount) int { return strings.Compare(a.Kind, b.Kind) })
	return counts
}

// PeriodicKeyPrefix starts the idempotency key of every periodic job's
// occurrence (PeriodicKey).
const PeriodicKeyPrefix = "ordo.periodic:"

// PeriodicKey is the idempotency key of the occurrence at of the periodic
// job name: the same on every node, so two leaders enqueueing one
// occurrence make one job.
func PeriodicKey(name string, at time.Time) string {
	return PeriodicKeyPrefix + name + "@" + at.UTC().Format(time.RFC3339Nano)
}

// PeriodicKeyRange bounds the keys of name's occurrences for a range scan
// in byte order: [lo, hi). Every occurrence time starts with a digit (a
// four-digit year), so keys of another name that merely starts with
// name + "@" fall outside unless that name continues with a digit (and
// those ParsePeriodicKey refuses).
func PeriodicKeyRange(name string) (lo, hi string) {
	p := PeriodicKeyPrefix + name + "@"
	return p + "0", p + ":" // ':' is the byte after '9'
}

// ParsePeriodicKey returns the occurrence time of name in key, if key is
// one of name's.
func ParsePeriodicKey(name, key string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(key, PeriodicKeyPrefix+name+"@")
	if !ok {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, rest)
	if err != nil || at.Location() != time.UTC {
		return time.Time{}, false
	}
	return at, true
}

// PeriodicScanLimit is how many of a name's greatest keys LastPeriodic
// reads. Key order is time order except between occurrences within one
// second (RFC 3339 drops trailing zeros: "…:01Z" sorts after "…:01.5Z"),
// so the latest occurrence is among the greatest keys unless a schedule
// has more than this many occurrences in a second.
const PeriodicScanLimit = 16

// PeriodicRun is an occurrence of a periodic job that has a log entry.
type PeriodicRun struct {
	JobID uuid.UUID
	At    time.Time // the occurrence time, from the key
	THLC  string
}

// LatestPeriodic picks the latest occurrence of name among the keyed
// entries a backend read (at most PeriodicScanLimit of the greatest
// keys).
func LatestPeriodic(name string, entries []PeriodicEntry) (PeriodicRun, bool) {
	var best PeriodicRun
	found := false
	for _, e := range entries {
		at, ok := ParsePeriodicKey(name, e.Key)
		if !ok || found && !at.After(best.At) {
			continue
		}
		best, found = PeriodicRun{JobID: e.JobID, At: at, THLC: e.THLC}, true
	}
	return best, found
}

// PeriodicEntry is a log entry with a periodic idempotency key, as a
// backend reads it for LastPeriodic.
type PeriodicEntry struct {
	JobID uuid.UUID
	Key   string
	THLC  string
}
