package dashboard

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// Issue 14: the session store is bounded, per token and in all, and a
// login does not scan it (only a full store is swept).
func TestSessionStoreBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSessionStore(time.Hour, 24*time.Hour, 3, 2)
	a, b, c, d := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("c")), sha256.Sum256([]byte("d"))
	create := func(h [32]byte) string {
		t.Helper()
		id, err := s.create(h, now)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, a2 := create(a), create(a)
	a3 := create(a) // a's third: its oldest ends
	if _, ok := s.get(a1, now); ok {
		t.Error("a token's oldest session lives on past MaxPerToken")
	}
	for _, id := range []string{a2, a3} {
		if _, ok := s.get(id, now); !ok {
			t.Error("a token's newer sessions ended")
		}
	}
	create(b) // 3 in all: full
	if _, err := s.create(c, now); !errors.Is(err, errTooManySessions) {
		t.Fatalf("a login into a full store: %v; want errTooManySessions", err)
	}
	if len(s.byID) != 3 || len(s.byToken) != 2 {
		t.Fatalf("store after a refused login: %d sessions, %d tokens", len(s.byID), len(s.byToken))
	}
	now = now.Add(2 * time.Hour) // every session idle past its limit
	create(d)
	if len(s.byID) != 1 || len(s.byToken) != 1 {
		t.Fatalf("after the sweep: %d sessions of %d tokens; want only the new one", len(s.byID), len(s.byToken))
	}
}
