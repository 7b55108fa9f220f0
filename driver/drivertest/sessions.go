package drivertest

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// testSessions: the dashboard's sessions, stored hashed, bounded per
// token and in all, touched, deleted, and deleted with their token.
func testSessions(t *testing.T, db Backend) {
	ctx := context.Background()
	now := time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC)
	tokA, tokB := sha256.Sum256([]byte("token-a")), sha256.Sum256([]byte("token-b"))
	session := func(id string, token [32]byte, at time.Time) driver.Session {
		return driver.Session{IDHash: sha256.Sum256([]byte(id)), TokenHash: token, CSRF: "csrf-" + id, CreatedAt: at, LastSeen: at}
	}
	limits := driver.SessionLimits{MaxTotal: 3, MaxPerToken: 2, IdleBefore: now.Add(-time.Hour), CreatedBefore: now.Add(-time.Hour)}
	create := func(s driver.Session, l driver.SessionLimits) {
		t.Helper()
		if err := db.CreateSession(ctx, s, l); err != nil {
			t.Fatal(err)
		}
	}
	found := func(s driver.Session) bool {
		t.Helper()
		got, err := db.Session(ctx, s.IDHash)
		if errors.Is(err, driver.ErrSessionNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if got.TokenHash != s.TokenHash || got.CSRF != s.CSRF || !got.CreatedAt.Equal(s.CreatedAt) || !got.LastSeen.Equal(s.LastSeen) {
			t.Fatalf("session read back as %+v; stored %+v", got, s)
		}
		return true
	}

	a1, a2, a3 := session("a1", tokA, now), session("a2", tokA, now.Add(time.Second)), session("a3", tokA, now.Add(2*time.Second))
	create(a1, limits)
	create(a2, limits)
	create(a3, limits) // a's third: its oldest goes
	if found(a1) || !found(a2) || !found(a3) {
		t.Fatal("MaxPerToken 2: want a1 gone, a2 and a3 kept")
	}
	b1 := session("b1", tokB, now.Add(3*time.Second))
	create(b1, limits) // 3 in all: full
	if err := db.CreateSession(ctx, session("c1", sha256.Sum256([]byte("token-c")), now), limits); !errors.Is(err, driver.ErrTooManySessions) {
		t.Fatalf("a session beyond MaxTotal with none expired: %v; want ErrTooManySessions", err)
	}

	// Touched: a2 stays live past a cutoff that expires the others.
	later := now.Add(2 * time.Hour)
	if err := db.TouchSession(ctx, a2.IDHash, later); err != nil {
		t.Fatal(err)
	}
	a2.LastSeen = later
	if !found(a2) {
		t.Fatal("touched session gone")
	}
	c2 := session("c2", sha256.Sum256([]byte("token-c")), later)
	create(c2, driver.SessionLimits{MaxTotal: 3, MaxPerToken: 2, IdleBefore: later.Add(-time.Hour), CreatedBefore: now.Add(-time.Hour)})
	if found(a3) || found(b1) || !found(a2) || !found(c2) {
		t.Fatal("a full store: want the expired a3 and b1 swept, a2 and the new c2 kept")
	}

	if err := db.DeleteSession(ctx, c2.IDHash); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteSession(ctx, c2.IDHash); err != nil || found(c2) {
		t.Fatalf("deleting a session twice: %v, found %v", err, found(c2))
	}

	// Revoking a token deletes its sessions, and only its.
	if err := db.CreateToken(ctx, driver.APIToken{ID: "tok_a", Hash: tokA, Admin: true, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	b2 := session("b2", tokB, later)
	create(b2, driver.SessionLimits{MaxTotal: 10, MaxPerToken: 2, IdleBefore: now, CreatedBefore: now})
	if err := db.RevokeToken(ctx, "tok_a", later); err != nil {
		t.Fatal(err)
	}
	if found(a2) || !found(b2) {
		t.Fatal("after revoking token a: want its session a2 gone, b2 kept")
	}
}
