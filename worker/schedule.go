package worker

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
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

// CronSchedule is a parsed five-field cron expression.
type CronSchedule struct {
	expr                   string
	loc                    *time.Location
	minute, hour, dom, dow uint64 // bit i set: value i matches
	month                  uint64
	domStar, dowStar       bool
}

// Cron parses a standard five-field cron expression, evaluated in UTC:
//
//	minute hour day-of-month month day-of-week
//
// Each field is "*", a number, a range "a-b", a list "a,b,c", and any of
// these with a step "/n" ("*/15", "0-30/10", "5/10" meaning 5-max/10).
// Months and weekdays may be named (jan-dec, sun-sat); weekday 0 and 7 are
// both Sunday. As in Vixie cron, when both day-of-month and day-of-week
// are restricted, a day matching either one matches. The macros @yearly
// (@annually), @monthly, @weekly, @daily (@midnight) and @hourly are
// accepted too. Seconds, "L", "W", "#" and "?" are not.
func Cron(expr string) (*CronSchedule, error) { return CronIn(expr, time.UTC) }

// CronIn is Cron evaluated in loc. Across a daylight-saving change, a time
// that does not exist that day is skipped and one that exists twice fires
// once.
func CronIn(expr string, loc *time.Location) (*CronSchedule, error) {
	if loc == nil {
		return nil, fmt.Errorf("worker: cron %q: nil location", expr)
	}
	spec := strings.TrimSpace(expr)
	switch spec {
	case "@yearly", "@annually":
		spec = "0 0 1 1 *"
	case "@monthly":
		spec = "0 0 1 * *"
	case "@weekly":
		spec = "0 0 * * 0"
	case "@daily", "@midnight":
		spec = "0 0 * * *"
	case "@hourly":
		spec = "0 * * * *"
	}
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return nil, fmt.Errorf("worker: cron %q: want 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(fields))
	}
	s := &CronSchedule{expr: expr, loc: loc}
	var err error
	if s.minute, err = parseField(fields[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("worker: cron %q: minute: %w", expr, err)
	}
	if s.hour, err = parseField(fields[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("worker: cron %q: hour: %w", expr, err)
	}
	if s.dom, err = parseField(fields[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("worker: cron %q: day of month: %w", expr, err)
	}
	if s.month, err = parseField(fields[3], 1, 12, monthNames); err != nil {
		return nil, fmt.Errorf("worker: cron %q: month: %w", expr, err)
	}
	if s.dow, err = parseField(fields[4], 0, 7, dayNames); err != nil {
		return nil, fmt.Errorf("worker: cron %q: day of week: %w", expr, err)
	}
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}
	s.domStar = strings.HasPrefix(fields[2], "*")
	s.dowStar = strings.HasPrefix(fields[4], "*")
	if !s.possible() {
		return nil, fmt.Errorf("worker: cron %q never fires (no such day in any of the months given)", expr)
	}
	return s, nil
}

// MustCron is Cron for expressions known to be valid; it panics otherwise.
func MustCron(expr string) *CronSchedule {
	s, err := Cron(expr)
	if err != nil {
		panic(err)
	}
	return s
}

func (s *CronSchedule) String() string { return s.expr }

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dayNames   = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

func parseField(f string, lo, hi int, names map[string]int) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(f, ",") {
		if item == "" {
			return 0, fmt.Errorf("empty item in %q", f)
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q: want a positive number", stepText)
			}
			step = n
		}
		var from, to int
		switch {
		case rng == "*":
			from, to = lo, hi
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if from, err = value(a, lo, hi, names); err != nil {
				return 0, err
			}
			if to, err = value(b, lo, hi, names); err != nil {
				return 0, err
			}
			if from > to {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := value(rng, lo, hi, names)
			if err != nil {
				return 0, err
			}
			from, to = v, v
			if hasStep {
				to = hi // "5/10" is "5-max/10", as in Vixie cron
			}
		}
		for v := from; v <= to; v += step {
			set |= 1 << v
		}
	}
	return set, nil
}

func value(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%d is out of range %d-%d", v, lo, hi)
	}
	return v, nil
}

// possible rejects expressions such as "0 0 30 2 *" that name only days a
// month never has, which would otherwise make Next search for years.
func (s *CronSchedule) possible() bool {
	if !s.domStar && !s.dowStar || s.domStar {
		return true // any weekday can satisfy an OR, and * matches every day
	}
	maxDays := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) != 0 && s.dom&(1<<(maxDays[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

func (s *CronSchedule) dayMatches(t time.Time) bool {
	d := s.dom&(1<<t.Day()) != 0
	w := s.dow&(1<<int(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return d && w
	}
	return d || w
}

// nextHour is the start of the local hour after t's. It works on local
// fields rather than t.Truncate(time.Hour), which cuts absolute time and
// so lands on the half hour in zones such as UTC+05:30.
func (s *CronSchedule) nextHour(t time.Time) time.Time {
	next := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, s.loc)
	if !next.After(t) {
		// time.Date may resolve an hour repeated by a daylight-saving
		// change to its first instance, which is behind us.
		next = t.Add(time.Duration(60-t.Minute()) * time.Minute)
	}
	return next
}

// Next implements Schedule: the first matching minute strictly after t.
func (s *CronSchedule) Next(t time.Time) time.Time {
	orig := t.Location()
	t = t.In(s.loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.Year() + 5 // 29 February on a Monday can take 28 years; five is plenty for real schedules
	for t.Year() <= limit {
		if s.month&(1<<int(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, s.loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, s.loc)
			continue
		}
		if s.hour&(1<<t.Hour()) == 0 {
			t = s.nextHour(t)
			continue
		}
		if s.minute&(1<<t.Minute()) == 0 {
			// Jump straight to the next matching minute of this hour.
			rest := s.minute >> (t.Minute() + 1) << (t.Minute() + 1)
			if rest == 0 {
				t = s.nextHour(t)
			} else {
				t = t.Add(time.Duration(bits.TrailingZeros64(rest)-t.Minute()) * time.Minute)
			}
			continue
		}
		return t.In(orig)
	}
	return time.Time{}
}
