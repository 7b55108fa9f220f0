// Package testsignal is how ordo's tests wait. Its invariant: a test
// waits on an event, something a goroutine records at the moment it
// happens (a worker event, a reload callback, a line a process printed),
// never by polling a condition or by sleeping, and every such wait is
// bounded by the one shared Timeout.
//
// A Recorder keeps every event recorded into it; Await returns the first
// event, past or future, that matches, so a test never races the event it
// waits for. When the wait fails, the test is told what was awaited and
// every event seen, which is usually enough to see why.
//
// It is a package of its own (not a _test.go file) because the tests of
// several packages import it; nothing outside tests should.
package testsignal

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Timeout bounds every wait of every test: generous, because a loaded CI
// machine under -race is slow, and only ever reached when the test is
// failing anyway.
const Timeout = 30 * time.Second

// TB is the part of testing.TB that Await uses (*testing.T satisfies it).
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Recorder keeps the events recorded into it, in order, and lets a test
// wait for one. Its zero value is not usable; call New.
type Recorder[E any] struct {
	// Timeout bounds each Await; zero means the package's Timeout. Set it
	// (only testsignal's own test needs to) before the recorder is used.
	Timeout time.Duration
	// Format describes one event in the dump a failed Await prints;
	// returning "" leaves the event out. Default fmt's %+v. Set it before
	// the recorder is used.
	Format func(E) string

	mu     sync.Mutex
	events []E
	more   chan struct{} // closed and replaced at every Record
}

// New returns an empty recorder.
func New[E any]() *Recorder[E] { return &Recorder[E]{more: make(chan struct{})} }

// Record adds e and wakes every Await. It is safe to call from any
// goroutine, and never blocks for long (hooks called synchronously, such
// as worker.Config.OnEvent, may call it).
func (r *Recorder[E]) Record(e E) {
	r.mu.Lock()
	r.events = append(r.events, e)
	close(r.more)
	r.more = make(chan struct{})
	r.mu.Unlock()
}

// Await returns the first event, past or future, for which match returns
// true. match is called once for every event, in the order recorded, from
// the caller's goroutine and without the recorder's lock held, so it may
// keep state (count events, tick off a set of job ids) and may call the
// recorder. If no event matches within the timeout, Await fails t with
// what it waited for and the events seen; it then returns the zero E (a
// *testing.T does not return from Fatalf).
func (r *Recorder[E]) Await(t TB, what string, match func(E) bool) E {
	t.Helper()
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = Timeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		r.mu.Lock()
		// Events are only ever appended: the elements of this slice are
		// never written again, so reading them unlocked is safe.
		fresh := r.events[seen:len(r.events):len(r.events)]
		more := r.more
		r.mu.Unlock()
		for _, e := range fresh {
			seen++
			if match(e) {
				return e
			}
		}
		select {
		case <-more:
		case <-deadline.C:
			t.Fatalf("no %s within %v; events so far:\n%s", what, timeout, r.Dump())
			var zero E
			return zero
		}
	}
}

// All returns the events recorded so far for which match returns true
// (every event when match is nil), in order.
func (r *Recorder[E]) All(match func(E) bool) []E {
	r.mu.Lock()
	events := r.events[:len(r.events):len(r.events)]
	r.mu.Unlock()
	var out []E
	for _, e := range events {
		if match == nil || match(e) {
			out = append(out, e)
		}
	}
	return out
}

// Dump describes every event recorded so far, one per line, with Format.
func (r *Recorder[E]) Dump() string {
	var b strings.Builder
	for _, e := range r.All(nil) {
		var s string
		if r.Format != nil {
			s = r.Format(e)
			if s == "" {
				continue
			}
		} else {
			s = fmt.Sprintf("%+v", e)
		}
		b.WriteString("  ")
		b.WriteString(strings.TrimSuffix(s, "\n"))
		b.WriteByte('\n')
	}
	return b.String()
}
