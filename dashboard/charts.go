package dashboard

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// The overview's activity charts (docs/dashboard.md): jobs enqueued,
// completed and failed per bucket, and how long jobs waited for their
// first start (mean and max per bucket), drawn here as inline SVG so the
// page reads without JavaScript, with a table of the same numbers.

// chartWindow is one of the charts' windows: Span of time in buckets of
// Step, labelled every TickEvery.
type chartWindow struct {
	Name, Label string
	Span, Step  time.Duration
	TickEvery   time.Duration
	StepWord    string // "minute", "15 minutes"
}

// The charts' windows; the hour is the default.
var (
	hourWindow = chartWindow{Name: "hour", Label: "Last hour", Span: time.Hour, Step: time.Minute, TickEvery: 10 * time.Minute, StepWord: "minute"}
	dayWindow  = chartWindow{Name: "day", Label: "Last day", Span: 24 * time.Hour, Step: 15 * time.Minute, TickEvery: 3 * time.Hour,
		StepWord: "15 minutes"}
	chartWindows = []chartWindow{hourWindow, dayWindow}
)

// The charts' drawing, in SVG user units (the SVG scales to its box;
// two charts side by side on a laptop screen draw about 1:1).
const (
	chartWidth  = 560
	chartHeight = 220
	chartLeft   = 64 // room for the y labels
	chartRight  = 24 // room for half of the last x label
	chartTop    = 12
	chartBottom = 42 // room for the x labels and the axis title
	chartYTicks = 4  // gridlines above zero
)

// bucket is one step of a chart: what happened from Start for one step.
type bucket struct {
	Start                                time.Time
	Enqueued, Started, Completed, Failed int64
	WaitSumMS, WaitMaxMS                 int64
	// Partial marks the bucket that holds now: its numbers are so far.
	Partial bool
}

// WaitMeanMS is the mean wait of the bucket's first starts (0 if none).
func (b bucket) WaitMeanMS() int64 {
	if b.Started == 0 {
		return 0
	}
	return b.WaitSumMS / b.Started
}

// floorTo is the start of the step of length step (which divides a day)
// that holds t, counted from the Unix epoch, so buckets fall on whole
// minutes and quarter hours of UTC.
func floorTo(t time.Time, step time.Duration) time.Time {
	ms, s := t.UnixMilli(), step.Milliseconds()
	f := ms - ms%s
	if ms < 0 && ms%s != 0 {
		f -= s
	}
	return time.UnixMilli(f).UTC()
}

// buckets lays the minutes out in w's buckets ending with the one that
// holds now.
func buckets(w chartWindow, now time.Time, minutes []driver.ActivityMinute) []bucket {
	n := int(w.Span / w.Step)
	last := floorTo(now, w.Step)
	first := last.Add(-time.Duration(n-1) * w.Step)
	out := make([]bucket, n)
	for i := range out {
		out[i].Start = first.Add(time.Duration(i) * w.Step)
	}
	out[n-1].Partial = true
	for _, m := range minutes {
		i := int(m.Minute.Sub(first) / w.Step)
		if m.Minute.Before(first) || i >= n {
			continue
		}
		b := &out[i]
		b.Enqueued += m.Enqueued
		b.Started += m.Started
		b.Completed += m.Succeeded
		b.Failed += m.Failed
		b.WaitSumMS += m.WaitSumMS
		b.WaitMaxMS = max(b.WaitMaxMS, m.WaitMaxMS)
	}
	return out
}

// windowMinutes is the range of minutes w's buckets need, to the end of
// now's minute.
func windowMinutes(w chartWindow, now time.Time) (from, to time.Time) {
	n := int(w.Span / w.Step)
	return floorTo(now, w.Step).Add(-time.Duration(n-1) * w.Step), driver.MinuteOf(now).Add(time.Minute)
}

// chartView is one chart, ready to draw: every coordinate computed here,
// the markup in overview.html.
type chartView struct {
	ID, Title, Desc          string
	Width, Height            int
	Left, Right, Top, Bottom float64 // the plot area
	XTicks, YTicks           []chartTick
	Series                   []chartSeries
	Hits                     []chartHit
	AxisTitleX, AxisTitleY   float64 // where "time (UTC)" goes
	TickEnd, PlotHeight      float64 // the x ticks' lower end; Bottom - Top
}

type chartTick struct {
	Pos   float64 // x of an x tick, y of a y tick
	Label string
}

// chartSeries is one line: segments of points (a series with gaps, like
// the wait of buckets where no job started, has several), and dots for
// segments of one point, which a polyline would not show.
type chartSeries struct {
	Name, Class string
	Segments    []string // polyline points
	Dots        []chartPoint
}

type chartPoint struct{ X, Y float64 }

// chartHit is a bucket's column: hovering shows its numbers (a <title>),
// and its data-* attributes carry them for tests and scripts.
type chartHit struct {
	X, Width float64
	Title    string
	B        bucket
}

// plot maps bucket i and value v to the drawing.
type plot struct {
	n    int
	yMax float64
}

func (p plot) x(i int) float64 {
	w := float64(chartWidth-chartLeft-chartRight) / float64(p.n)
	return chartLeft + (float64(i)+0.5)*w
}

func (p plot) y(v float64) float64 {
	h := float64(chartHeight - chartTop - chartBottom)
	return float64(chartHeight-chartBottom) - v/p.yMax*h
}

func newChart(id, title, desc string, w chartWindow, bs []bucket, yMax float64, yLabel func(float64) string) (chartView, plot) {
	p := plot{n: len(bs), yMax: yMax}
	c := chartView{ID: id, Title: title, Desc: desc, Width: chartWidth, Height: chartHeight,
		Left: chartLeft, Right: chartWidth - chartRight, Top: chartTop, Bottom: chartHeight - chartBottom,
		AxisTitleX: chartLeft + float64(chartWidth-chartLeft-chartRight)/2, AxisTitleY: chartHeight - 4,
		TickEnd: chartHeight - chartBottom + 5, PlotHeight: chartHeight - chartBottom - chartTop}
	for i := 0; i <= chartYTicks; i++ {
		v := yMax * float64(i) / chartYTicks
		c.YTicks = append(c.YTicks, chartTick{Pos: p.y(v), Label: yLabel(v)})
	}
	colW := float64(chartWidth-chartLeft-chartRight) / float64(len(bs))
	for i, b := range bs {
		if b.Start.UnixMilli()%w.TickEvery.Milliseconds() == 0 {
			c.XTicks = append(c.XTicks, chartTick{Pos: p.x(i), Label: b.Start.Format("15:04")})
		}
		c.Hits = append(c.Hits, chartHit{X: chartLeft + float64(i)*colW, Width: colW, B: b})
	}
	return c, p
}

// line draws values as one series; a value of ok false leaves a gap.
func line(p plot, name, class string, n int, value func(i int) (float64, bool)) chartSeries {
	s := chartSeries{Name: name, Class: class}
	var seg []chartPoint
	flush := func() {
		switch len(seg) {
		case 0:
		case 1:
			s.Dots = append(s.Dots, seg[0])
		default:
			var b strings.Builder
			for i, pt := range seg {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", pt.X, pt.Y)
			}
			s.Segments = append(s.Segments, b.String())
		}
		seg = seg[:0]
	}
	for i := range n {
		v, ok := value(i)
		if !ok {
			flush()
			continue
		}
		seg = append(seg, chartPoint{X: p.x(i), Y: p.y(v)})
	}
	flush()
	return s
}

// niceCountMax is the top of a count axis: chartYTicks steps of 1, 2 or 5
// times a power of ten, at least 1 each.
func niceCountMax(v int64) float64 {
	for step := int64(1); ; step *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if s := step * m; s*chartYTicks >= v {
				return float64(s * chartYTicks)
			}
		}
	}
}

// waitSteps are the steps of a wait axis, in milliseconds: round numbers
// of milliseconds, seconds, minutes and hours.
var waitSteps = []int64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
	600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000}

func niceWaitMax(ms int64) float64 {
	if ms == 0 {
		return 4000 // no job started: an axis of seconds reads better than one of milliseconds
	}
	for _, s := range waitSteps {
		if s*chartYTicks >= ms {
			return float64(s * chartYTicks)
		}
	}
	day := waitSteps[len(waitSteps)-1]
	return float64((ms/(day*chartYTicks) + 1) * day * chartYTicks)
}

// fmtWait writes a wait for people: "850 ms", "1.5 s", "2 min", "1.2 h".
func fmtWait(ms float64) string {
	trim := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	one := func(v float64) string { return trim(float64(int64(v*10+0.5)) / 10) }
	switch {
	case ms == 0:
		return "0"
	case ms < 1000:
		return trim(float64(int64(ms+0.5))) + " ms"
	case ms < 60_000:
		return one(ms/1000) + " s"
	case ms < 3_600_000:
		return one(ms/60_000) + " min"
	}
	return one(ms/3_600_000) + " h"
}

// activityView is the overview's activity section.
type activityView struct {
	Window       chartWindow
	Windows      []chartLink
	Scopes       []chartLink
	ScopeLabel   string
	Buckets      []bucket
	Counts       chartView
	Wait         chartView
	Totals       bucket // the window's sums (WaitMaxMS its largest)
	TableCaption string
}

// chartLink is a choice of window or tenants, a link to the overview.
type chartLink struct {
	Label, Href string
	Current     bool
}

func overviewHref(window, tenant string) string {
	q := url.Values{}
	if window != hourWindow.Name {
		q.Set("window", window)
	}
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

// chartWindowNamed is the window a ?window= names ("" is the hour).
func chartWindowNamed(name string) (chartWindow, bool) {
	if name == "" {
		return hourWindow, true
	}
	for _, w := range chartWindows {
		if w.Name == name {
			return w, true
		}
	}
	return chartWindow{}, false
}

// activity reads and lays out the activity of tenant ("" for every
// tenant the caller sees, an admin) over w. tenants are the choices of
// scope offered (an admin's).
func (d *Dashboard) activity(ctx context.Context, now time.Time, w chartWindow, tenant string, tenants []string) (*activityView, error) {
	from, to := windowMinutes(w, now)
	minutes, err := d.backend.ActivityMinutes(ctx, driver.ActivityParams{TenantID: tenant, From: from, To: to})
	if err != nil {
		return nil, err
	}
	bs := buckets(w, now, minutes)
	a := &activityView{Window: w, Buckets: bs, ScopeLabel: "every tenant"}
	if tenant != "" {
		a.ScopeLabel = "tenant " + tenant
	}
	for _, cw := range chartWindows {
		a.Windows = append(a.Windows, chartLink{Label: cw.Label, Href: overviewHref(cw.Name, tenant), Current: cw.Name == w.Name})
	}
	if len(tenants) > 0 {
		a.Scopes = append(a.Scopes, chartLink{Label: "every tenant", Href: overviewHref(w.Name, ""), Current: tenant == ""})
		for _, t := range tenants {
			a.Scopes = append(a.Scopes, chartLink{Label: t, Href: overviewHref(w.Name, t), Current: t == tenant})
		}
	}
	var maxCount, maxWait int64
	var busiest, slowest bucket
	for _, b := range bs {
		a.Totals.Enqueued += b.Enqueued
		a.Totals.Started += b.Started
		a.Totals.Completed += b.Completed
		a.Totals.Failed += b.Failed
		a.Totals.WaitSumMS += b.WaitSumMS
		maxCount = max(maxCount, b.Enqueued, b.Completed, b.Failed)
		if b.Enqueued+b.Completed+b.Failed > busiest.Enqueued+busiest.Completed+busiest.Failed {
			busiest = b
		}
		if b.Started > 0 && (slowest.Started == 0 || b.WaitMaxMS > slowest.WaitMaxMS) {
			slowest = b
		}
		maxWait = max(maxWait, b.WaitMaxMS)
	}
	a.Totals.WaitMaxMS = maxWait
	span := fmt.Sprintf("%s to %s UTC", bs[0].Start.Format("15:04"), bs[len(bs)-1].Start.Add(w.Step).Format("15:04"))
	if w.Span >= 24*time.Hour {
		span = fmt.Sprintf("%s to %s UTC", bs[0].Start.Format("Jan 2 15:04"), bs[len(bs)-1].Start.Add(w.Step).Format("Jan 2 15:04"))
	}
	a.TableCaption = fmt.Sprintf("Per %s, %s, %s; the last row is not over yet.", w.StepWord, span, a.ScopeLabel)

	countsDesc := fmt.Sprintf("Jobs of %s enqueued, completed (succeeded) and failed for good, per %s, %s; the last %s is not over yet. In all: %d enqueued, %d completed, %d failed.",
		a.ScopeLabel, w.StepWord, span, w.StepWord, a.Totals.Enqueued, a.Totals.Completed, a.Totals.Failed)
	if !busiest.Start.IsZero() {
		countsDesc += fmt.Sprintf(" Busiest: %s UTC, with %d enqueued, %d completed and %d failed.", busiest.Start.Format("15:04"),
			busiest.Enqueued, busiest.Completed, busiest.Failed)
	}
	cv, cp := newChart("chart-counts", fmt.Sprintf("Jobs per %s, %s", w.StepWord, strings.ToLower(w.Label)), countsDesc, w, bs,
		niceCountMax(maxCount), func(v float64) string { return strconv.FormatInt(int64(v+0.5), 10) })
	cv.Series = []chartSeries{
		line(cp, "enqueued", "s-enqueued", len(bs), func(i int) (float64, bool) { return float64(bs[i].Enqueued), true }),
		line(cp, "completed", "s-completed", len(bs), func(i int) (float64, bool) { return float64(bs[i].Completed), true }),
		line(cp, "failed", "s-failed", len(bs), func(i int) (float64, bool) { return float64(bs[i].Failed), true }),
	}
	for i := range cv.Hits {
		b := cv.Hits[i].B
		cv.Hits[i].Title = fmt.Sprintf("%s UTC%s: %d enqueued, %d completed, %d failed", b.Start.Format("15:04"), soFar(b), b.Enqueued, b.Completed, b.Failed)
	}
	a.Counts = cv

	waitDesc := fmt.Sprintf("How long jobs of %s waited for their first start, from when they were due (enqueued, or their run_at if later): mean and longest per %s, %s.",
		a.ScopeLabel, w.StepWord, span)
	if a.Totals.Started == 0 {
		waitDesc += " No job started in this window."
	} else {
		waitDesc += fmt.Sprintf(" %d jobs started; mean wait %s; the longest %s, at %s UTC.", a.Totals.Started,
			fmtWait(float64(a.Totals.WaitSumMS/a.Totals.Started)), fmtWait(float64(maxWait)), slowest.Start.Format("15:04"))
	}
	wv, wp := newChart("chart-wait", fmt.Sprintf("Wait for the first start per %s, %s", w.StepWord, strings.ToLower(w.Label)), waitDesc, w, bs,
		niceWaitMax(maxWait), fmtWait)
	started := func(i int) bool { return bs[i].Started > 0 }
	wv.Series = []chartSeries{
		line(wp, "mean", "s-mean", len(bs), func(i int) (float64, bool) { return float64(bs[i].WaitMeanMS()), started(i) }),
		line(wp, "max", "s-max", len(bs), func(i int) (float64, bool) { return float64(bs[i].WaitMaxMS), started(i) }),
	}
	for i := range wv.Hits {
		b := wv.Hits[i].B
		if b.Started == 0 {
			wv.Hits[i].Title = fmt.Sprintf("%s UTC%s: no job started", b.Start.Format("15:04"), soFar(b))
		} else {
			wv.Hits[i].Title = fmt.Sprintf("%s UTC%s: %d started, mean wait %s, longest %s", b.Start.Format("15:04"), soFar(b), b.Started,
				fmtWait(float64(b.WaitMeanMS())), fmtWait(float64(b.WaitMaxMS)))
		}
	}
	a.Wait = wv
	return a, nil
}

func soFar(b bucket) string {
	if b.Partial {
		return " (so far)"
	}
	return ""
}

// rateSpan is the time a rate over the window ending at now covers: the
// window, or less if the tenant's first job came later (issue 16: a
// 60/min trickle read 19.2/min a minute and a half after it began,
// because 96 jobs were divided by the whole 5 minutes). Zero: no rate.
func rateSpan(now, firstEnqueued time.Time) time.Duration {
	if firstEnqueued.IsZero() {
		return 0
	}
	start := now.Add(-rateWindow)
	if firstEnqueued.After(start) {
		start = firstEnqueued
	}
	return max(now.Sub(start), 0)
}

// minRateSpan is the least time a rate is given over: over less, a
// single job would read as thousands a minute.
const minRateSpan = 10 * time.Second

// rate is n per minute over span, for the overview.
func rate(n int64, span time.Duration) string {
	if span < minRateSpan {
		return "—"
	}
	return strconv.FormatFloat(float64(n)/span.Minutes(), 'f', 1, 64) + "/min"
}

// spanNote says how long a rate covers when it is less than the window.
func spanNote(span time.Duration) string {
	if span <= 0 || span >= rateWindow {
		return ""
	}
	if span < minRateSpan {
		return "just started"
	}
	return "over " + strconv.FormatFloat(span.Minutes(), 'f', 1, 64) + " min"
}
