package worker

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when a periodic job's occurrences are. Next returns the
// first occurrence strictly after t, or the zero time if there is none.
//
// Occurrences must be a pure function of time: every client computes them
// independently and they must agree, because an occurrence's time is part
// of its job's idempotency key.
type Schedule interface {
	Next(t time.Time) time.Time
}

// Every returns a schedule with an occurrence at every multiple of d since
// the Unix epoch (so Every(time.Hour) fires on the hour, whenever the
// client started). d must be positive; Every panics otherwise.
func Every(d time.Duration) Schedule {
	if d <= 0 {
		panic(fmt.Sprintf("worker: Every(%v): the interval must be positive", d))
	}
	return every{d}
}

type every struct{ d time.Duration }

func (e every) Next(t time.Time) time.Time {
	// Aligning to the epoch rather than to a start time is what makes two
	// clients that started at different moments agree on the occurrences.
	n := t.UnixNano()
	d := int64(e.d)
	q := n / d
	if n < 0 && n%d != 0 {
		q-- // floor, not truncation toward zero
	}
	return time.Unix(0, (q+1)*d).In(t.Location())
}

func (e every) String() string { return "every " + e.d.String() }

// latest returns the last occurrence in (after, now], or the zero time.
func latest(s Schedule, after, now time.Time) time.Time {
	if e, ok := s.(every); ok {
		// Closed form: an interval of a millisecond over a long catch-up
		// window would otherwise mean millions of steps.
		n := now.UnixNano()
		d := int64(e.d)
		q := n / d
		if n < 0 && n%d != 0 {
			q--
		}
		t := time.Unix(0, q*d)
		if !t.After(after) {
			return time.Time{}
		}
		return t
	}
	var last time.Time
	for t, i := s.Next(after), 0; !t.IsZero() && !t.After(now); t, i = s.Next(t), i+1 {
		last = t
		if i > 1_000_000 {
			break // a schedule finer than a minute over a huge window; good enough
		}
	}
	return last
}

// CronSchedule is a parsed cron expression (github.com/robfig/cron/v3).
type CronSchedule struct {
	expr string
	spec *cron.SpecSchedule
}

// cronParser reads what Go users know from robfig/cron: five fields
// (minute hour day-of-month month day-of-week) or six with seconds first,
// names (jan-dec, sun-sat), ranges, lists and steps, the descriptors
// @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly,
// and a CRON_TZ= (or TZ=) prefix naming the zone.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Cron parses a cron expression, evaluated in UTC unless it starts with
// CRON_TZ=Zone. As in Vixie cron, when both day-of-month and day-of-week
// are restricted, a day matching either one matches. "@every D" is
// Every(D): aligned to the Unix epoch, not to when a client started, so
// that every client computes the same occurrences (robfig's own @every
// counts from the time it is asked about, which would make two clients
// enqueue different occurrences). An expression that can never fire ("0 0
// 31 2 *") is refused.
func Cron(expr string) (Schedule, error) { return CronIn(expr, time.UTC) }

// CronIn is Cron evaluated in loc (a CRON_TZ= prefix wins). Across a
// daylight-saving change, a time that does not exist that day is skipped
// and one that exists twice fires once.
func CronIn(expr string, loc *time.Location) (Schedule, error) {
	if loc == nil {
		return nil, fmt.Errorf("worker: cron %q: nil location", expr)
	}
	spec := strings.TrimSpace(expr)
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || every <= 0 {
			return nil, fmt.Errorf("worker: cron %q: want @every and a positive duration such as 90s or 1h30m", expr)
		}
		return Every(every), nil
	}
	if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") && loc != time.UTC {
		spec = "CRON_TZ=" + loc.String() + " " + spec
	}
	for _, f := range strings.Fields(spec) {
		// robfig reads "1,,2" as "1,2"; an empty item is a typo to report.
		if !strings.Contains(f, "=") && (strings.Contains(f, ",,") || strings.HasPrefix(f, ",") || strings.HasSuffix(f, ",")) {
			return nil, fmt.Errorf("worker: cron %q: empty item in %q", expr, f)
		}
	}
	parsed, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("worker: cron %q: %w", expr, err)
	}
	ss, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("worker: cron %q: unsupported schedule %T", expr, parsed)
	}
	s := &CronSchedule{expr: expr, spec: ss}
	if !s.possible() {
		return nil, fmt.Errorf("worker: cron %q never fires (no such day in any of the months given)", expr)
	}
	return s, nil
}

// MustCron is Cron for expressions known to be valid; it panics otherwise.
func MustCron(expr string) Schedule {
	s, err := Cron(expr)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *CronSchedule) String() string { return s.expr }

// starBit marks a field written as "*" in robfig's SpecSchedule.
const starBit = 1 << 63

// possible rejects expressions such as "0 0 30 2 *" that name only days a
// month never has: robfig's Next would search five years and give up.
func (s *CronSchedule) possible() bool {
	if s.spec.Dom&starBit != 0 || s.spec.Dow&starBit == 0 {
		return true // * matches every day, and any weekday can satisfy an OR
	}
	maxDays := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.spec.Month&(1<<m) != 0 && s.spec.Dom&(1<<(maxDays[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

// Next implements Schedule: the first occurrence strictly after t, in t's
// location, or the zero time when there is none within five years. A
// local time that a daylight-saving change repeats fires once, at its
// first instance: robfig's Next fires the repeated hour's times again
// (01:00 EDT, 01:30 EDT, then 01:00 EST, 01:30 EST), and a periodic job
// would run twice. So an occurrence whose local reading is not later than
// t's is skipped.
func (s *CronSchedule) Next(t time.Time) time.Time {
	next := s.spec.Next(t)
	for !next.IsZero() && !wallClockAfter(next, t.In(next.Location())) {
		next = s.spec.Next(next)
	}
	if next.IsZero() {
		return next
	}
	return next.In(t.Location())
}

// wallClockAfter reports whether a's local date and time (to the second)
// read later than b's, both in one location: the order of the clock on
// the wall, which goes back by an hour when daylight saving time ends.
func wallClockAfter(a, b time.Time) bool {
	wall := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
	}
	return wall(a).After(wall(b))
}
