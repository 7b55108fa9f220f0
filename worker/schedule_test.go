package worker_test

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the DST cases must not depend on the machine's zoneinfo

	"github.com/ordo-sched/ordo/worker"
)

func mustTime(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	tm, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func TestCronNext(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		expr string
		loc  *time.Location
		from string
		want []string
	}{
		{"*/15 * * * *", time.UTC, "2024-01-01 00:00", []string{"2024-01-01 00:15", "2024-01-01 00:30", "2024-01-01 00:45", "2024-01-01 01:00"}},
		{"0 9 * * mon-fri", time.UTC, "2024-01-05 10:00", []string{"2024-01-08 09:00", "2024-01-09 09:00"}}, // Friday -> Monday
		{"30 2 1 * *", time.UTC, "2024-01-31 23:59", []string{"2024-02-01 02:30", "2024-03-01 02:30"}},
		{"0 0 29 2 *", time.UTC, "2024-03-01 00:00", []string{"2028-02-29 00:00"}},
		{"0 0 13 * 5", time.UTC, "2024-09-01 00:00", []string{"2024-09-06 00:00", "2024-09-13 00:00", "2024-09-20 00:00"}}, // the 13th OR a Friday
		{"0 0 * * 0", time.UTC, "2024-01-01 00:00", []string{"2024-01-07 00:00"}},                                          // 0 is Sunday
		{"0 30 9 * * *", time.UTC, "2024-01-01 00:00", []string{"2024-01-01 09:30"}},                                       // six fields: seconds first
		{"CRON_TZ=America/New_York 0 9 * * *", time.UTC, "2024-01-01 00:00", []string{"2024-01-01 14:00", "2024-01-02 14:00"}},
		{"@daily", time.UTC, "2024-01-01 10:00", []string{"2024-01-02 00:00"}},
		{"@every 90m", time.UTC, "2024-01-01 10:00", []string{"2024-01-01 10:30", "2024-01-01 12:00"}}, // aligned to the epoch
		{"5/20 10-11 * JAN,dec *", time.UTC, "2024-01-01 10:50", []string{"2024-01-01 11:05", "2024-01-01 11:25", "2024-01-01 11:45", "2024-01-02 10:05"}},
		{"@hourly", time.UTC, "2024-01-01 10:00", []string{"2024-01-01 11:00"}},
		{"@weekly", time.UTC, "2024-01-01 10:00", []string{"2024-01-07 00:00"}},
		// 02:30 does not exist on 10 March 2024 in New York: skipped.
		{"30 2 * * *", ny, "2024-03-09 03:00", []string{"2024-03-11 02:30"}},
		// 01:30 happens twice on 3 November 2024: fires once.
		{"30 1 * * *", ny, "2024-11-03 00:00", []string{"2024-11-03 01:30", "2024-11-04 01:30"}},
		// So do 01:00 and 01:30 of the repeated hour: each fires once.
		{"0,30 1 * * *", ny, "2024-11-03 00:00", []string{"2024-11-03 01:00", "2024-11-03 01:30", "2024-11-04 01:00"}},
		// Every 20 minutes through the repeated hour: 01:00, 01:20, 01:40 once, then 02:00.
		{"*/20 * * * *", ny, "2024-11-03 00:40", []string{"2024-11-03 01:00", "2024-11-03 01:20", "2024-11-03 01:40", "2024-11-03 02:00"}},
		// A half-hour zone: the next hour is 11:00 local, not 11:30.
		{"0 * * * *", kolkata, "2024-01-01 10:45", []string{"2024-01-01 11:00", "2024-01-01 12:00"}},
	} {
		s, err := worker.CronIn(c.expr, c.loc)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		at := mustTime(t, c.loc, c.from)
		for _, w := range c.want {
			at = s.Next(at)
			if want := mustTime(t, c.loc, w); !at.Equal(want) {
				t.Errorf("%q in %s: next is %v, want %v", c.expr, c.loc, at.In(c.loc), want)
				break
			}
		}
	}
}

func TestCronSeconds(t *testing.T) {
	at := mustTime(t, time.UTC, "2024-01-01 10:00")
	s := worker.MustCron("*/20 * * * * *")
	for _, want := range []time.Duration{20 * time.Second, 40 * time.Second, time.Minute} {
		at = s.Next(at)
		if w := mustTime(t, time.UTC, "2024-01-01 10:00").Add(want); !at.Equal(w) {
			t.Fatalf("*/20 seconds: next is %v, want %v", at, w)
		}
	}
}

func TestCronErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"* * * *":                        "expected 5 to 6 fields",
		"60 * * * *":                     "above maximum (59)",
		"*/0 * * * *":                    "step",
		"5-1 * * * *":                    "beyond end of range",
		"0 0 31 2,4 *":                   "never fires",
		"0 0 * * funday":                 "funday",
		"0 0 1,,2 * *":                   "empty item",
		"0 0 * * 7":                      "above maximum (6)",
		"@every -5m":                     "positive duration",
		"@every soon":                    "positive duration",
		"CRON_TZ=Mars/Olympus 0 0 * * *": "Mars/Olympus",
	} {
		if _, err := worker.Cron(expr); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Cron(%q) = %v, want an error about %q", expr, err, want)
		}
	}
}

func TestEveryIsAlignedToTheEpoch(t *testing.T) {
	at := mustTime(t, time.UTC, "2024-01-01 10:31")
	if got, want := worker.Every(time.Hour).Next(at), mustTime(t, time.UTC, "2024-01-01 11:00"); !got.Equal(want) {
		t.Errorf("Every(1h).Next(10:31) = %v, want %v", got, want)
	}
	if got, want := worker.Every(15*time.Minute).Next(mustTime(t, time.UTC, "2024-01-01 10:45")), mustTime(t, time.UTC, "2024-01-01 11:00"); !got.Equal(want) {
		t.Errorf("Every(15m).Next(10:45) = %v, want %v (strictly after)", got, want)
	}
	// The latest occurrence in (after, now], as a leader catching up sees it.
	now := mustTime(t, time.UTC, "2024-01-01 10:31")
	for _, s := range []worker.Schedule{worker.Every(time.Minute), worker.MustCron("* * * * *")} {
		if got := worker.Latest(s, now.Add(-10*time.Minute), now); !got.Equal(now) {
			t.Errorf("%v: latest = %v, want %v", s, got, now)
		}
		if got := worker.Latest(s, now, now.Add(30*time.Second)); !got.IsZero() {
			t.Errorf("%v: latest in an empty window = %v", s, got)
		}
	}
}
