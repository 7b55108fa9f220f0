package testsignal_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/internal/testsignal"
)

// fakeT records Fatalf instead of ending the test, so that the failure
// path of Await can be checked.
type fakeT struct {
	mu     sync.Mutex
	failed []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = append(f.failed, fmt.Sprintf(format, args...))
}

func is(want string) func(string) bool { return func(s string) bool { return s == want } }

func TestAwaitPastEvent(t *testing.T) {
	r := testsignal.New[string]()
	r.Record("a")
	r.Record("b")
	r.Record("b")
	if got := r.Await(t, "b", is("b")); got != "b" {
		t.Fatalf("Await = %q", got)
	}
	// Past events stay: awaiting again finds the first one again.
	if got := r.Await(t, "a", is("a")); got != "a" {
		t.Fatalf("Await = %q", got)
	}
}

func TestAwaitFutureEventFromAnotherGoroutine(t *testing.T) {
	r := testsignal.New[string]()
	r.Record("go")
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-started // Await has looked at every past event
		r.Record("noise")
		r.Record("target")
	}()
	var looked []string
	got := r.Await(t, "target", func(s string) bool {
		looked = append(looked, s)
		if s == "go" {
			close(started)
		}
		return s == "target"
	})
	<-done
	if got != "target" {
		t.Fatalf("Await = %q", got)
	}
	// match saw each event once, in order.
	if strings.Join(looked, ",") != "go,noise,target" {
		t.Fatalf("match called on %v", looked)
	}
}

func TestAwaitManyRecorders(t *testing.T) {
	r := testsignal.New[int]()
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r.Record(w*each + i)
			}
		}()
	}
	n := 0
	r.Await(t, "every event", func(int) bool { n++; return n == writers*each })
	wg.Wait()
	if got := len(r.All(nil)); got != writers*each {
		t.Fatalf("All(nil) has %d events", got)
	}
	if got := len(r.All(func(i int) bool { return i%2 == 0 })); got != writers*each/2 {
		t.Fatalf("All(even) has %d events", got)
	}
}

func TestAwaitTimesOutWithTheEventsSeen(t *testing.T) {
	r := testsignal.New[string]()
	r.Timeout = 20 * time.Millisecond
	r.Format = func(s string) string {
		if s == "hidden" {
			return ""
		}
		return "event " + s
	}
	r.Record("one")
	r.Record("hidden")
	r.Record("two")
	ft := &fakeT{}
	if got := r.Await(ft, "three", is("three")); got != "" {
		t.Fatalf("a failed Await returned %q", got)
	}
	if len(ft.failed) != 1 {
		t.Fatalf("Fatalf called %d times: %q", len(ft.failed), ft.failed)
	}
	msg := ft.failed[0]
	for _, want := range []string{"no three within 20ms", "  event one\n  event two\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "hidden") {
		t.Errorf("failure %q shows an event Format left out", msg)
	}
}

func TestDumpDefaultFormat(t *testing.T) {
	type ev struct {
		Kind string
		N    int
	}
	r := testsignal.New[ev]()
	r.Record(ev{"x", 1})
	if got, want := r.Dump(), "  {Kind:x N:1}\n"; got != want {
		t.Fatalf("Dump = %q, want %q", got, want)
	}
}
