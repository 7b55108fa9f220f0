// Package authguard slows down guessing of tokens: it counts failed
// authentications (a wrong bearer token on the API, a wrong token on the
// dashboard's login form) per client address, and blocks an address that
// failed too often until its window ends.
//
// Invariants:
//   - An address is blocked once it has failed Limit times within Window of
//     its first counted failure, until that window ends; a success does not
//     reset it (a guesser holding one valid token must not get a fresh
//     budget from it).
//   - Memory is bounded: at most MaxAddresses windows are kept. When the
//     table is full (a flood of addresses), expired windows are dropped, at
//     most once a second; a new address that finds no room is not counted,
//     so it is not blocked either: under such a flood the addresses already
//     blocked stay blocked, and clients that never failed keep working
//     (tokens are 256-bit random, so the guessing this lets through is
//     hopeless; locking every new client out would not be).
//   - Logging is bounded too: Fail reports true (log this) only for an
//     address's first failure in a window and for the one that blocks it.
package authguard

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// MaxAddresses bounds the addresses tracked at once.
const MaxAddresses = 100_000

// Guard counts failed authentications per client address.
type Guard struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	windows   map[string]*failures
	lastSweep time.Time
}

type failures struct {
	since time.Time
	n     int
}

// New returns a guard that blocks an address after limit failures within
// window. now is the clock (nil: time.Now).
func New(limit int, window time.Duration, now func() time.Time) *Guard {
	if now == nil {
		now = time.Now
	}
	return &Guard{limit: limit, window: window, now: now, windows: map[string]*failures{}}
}

// Blocked reports whether addr may not try now, and for how long.
func (g *Guard) Blocked(addr string) (time.Duration, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	f, ok := g.windows[addr]
	if !ok {
		return 0, false
	}
	left := f.since.Add(g.window).Sub(now)
	if left <= 0 {
		delete(g.windows, addr)
		return 0, false
	}
	return left, f.n >= g.limit
}

// Fail counts a failed authentication from addr. It returns whether the
// caller should log it: the first failure of a window, and the one that
// blocks the address.
func (g *Guard) Fail(addr string) (log bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	f, ok := g.windows[addr]
	if ok && !now.Before(f.since.Add(g.window)) {
		ok = false
	}
	if !ok {
		if len(g.windows) >= MaxAddresses && !g.sweep(now) {
			return false
		}
		g.windows[addr] = &failures{since: now, n: 1}
		return true
	}
	f.n++
	return f.n == g.limit
}

// sweep drops expired windows, at most once a second (a full table under
// a flood must not cost a scan per request), and reports whether there is
// room now.
func (g *Guard) sweep(now time.Time) bool {
	if now.Sub(g.lastSweep) >= time.Second || now.Before(g.lastSweep) {
		g.lastSweep = now
		for a, f := range g.windows {
			if !now.Before(f.since.Add(g.window)) {
				delete(g.windows, a)
			}
		}
	}
	return len(g.windows) < MaxAddresses
}

// Len is how many addresses the guard holds windows for.
func (g *Guard) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.windows)
}

// ClientAddress is the address a request came from, without its port: the
// key failures are counted under. Behind a reverse proxy every request has
// the proxy's address, so the limit then applies to all clients at once.
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
