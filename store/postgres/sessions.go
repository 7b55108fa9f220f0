package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// sessionsLockKey is the advisory lock CreateSession holds; chain locks
// are FNV hashes of chain keys, which a collision would only make share.
var sessionsLockKey = chainLockKey(chain.Key{TenantID: "ordo.dashboard_sessions"})

// CreateSession implements driver.Sessions, in one transaction.
func (db *DB) CreateSession(ctx context.Context, s driver.Session, l driver.SessionLimits) error {
	return db.inTx(ctx, "creating a dashboard session", func(tx pgx.Tx) error {
		// Logins take turns, so concurrent ones cannot both count room
		// that only one has (SQLite's immediate transactions do the same).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sessionsLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM scheduler.dashboard_sessions WHERE id_hash IN (
			SELECT id_hash FROM scheduler.dashboard_sessions WHERE token_hash = $1
			ORDER BY created_at DESC, id_hash OFFSET $2)`, s.TokenHash[:], max(l.MaxPerToken-1, 0)); err != nil {
			return err
		}
		count := func() (n int, err error) {
			err = tx.QueryRow(ctx, `SELECT count(*) FROM scheduler.dashboard_sessions`).Scan(&n)
			return n, err
		}
		n, err := count()
		if err != nil {
			return err
		}
		if n >= l.MaxTotal {
			// Full: the expired sessions go, only now (a login does not
			// pay for a sweep otherwise).
			if _, err := tx.Exec(ctx, `DELETE FROM scheduler.dashboard_sessions WHERE last_seen < $1 OR created_at < $2`,
				l.IdleBefore, l.CreatedBefore); err != nil {
				return err
			}
			if n, err = count(); err != nil {
				return err
			}
			if n >= l.MaxTotal {
				return driver.ErrTooManySessions
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO scheduler.dashboard_sessions (id_hash, token_hash, csrf, created_at, last_seen)
			VALUES ($1, $2, $3, $4, $5)`, s.IDHash[:], s.TokenHash[:], s.CSRF, s.CreatedAt, s.LastSeen)
		return err
	})
}

// Session implements driver.Sessions.
func (db *DB) Session(ctx context.Context, h [32]byte) (driver.Session, error) {
	s := driver.Session{IDHash: h}
	var token []byte
	err := db.Pool.QueryRow(ctx, `SELECT token_hash, csrf, created_at, last_seen FROM scheduler.dashboard_sessions WHERE id_hash = $1`,
		h[:]).Scan(&token, &s.CSRF, &s.CreatedAt, &s.LastSeen)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, driver.ErrSessionNotFound
	}
	copy(s.TokenHash[:], token)
	return s, wrap("reading a dashboard session", err)
}

// TouchSession implements driver.Sessions.
func (db *DB) TouchSession(ctx context.Context, h [32]byte, now time.Time) error {
	_, err := db.Pool.Exec(ctx, `UPDATE scheduler.dashboard_sessions SET last_seen = $2 WHERE id_hash = $1`, h[:], now)
	return wrap("touching a dashboard session", err)
}

// DeleteSession implements driver.Sessions.
func (db *DB) DeleteSession(ctx context.Context, h [32]byte) error {
	_, err := db.Pool.Exec(ctx, `DELETE FROM scheduler.dashboard_sessions WHERE id_hash = $1`, h[:])
	return wrap("deleting a dashboard session", err)
}
