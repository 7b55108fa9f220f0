package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// CreateSession implements driver.Sessions, in one transaction.
func (db *DB) CreateSession(ctx context.Context, s driver.Session, l driver.SessionLimits) error {
	return db.inTx(ctx, "creating a dashboard session", func(t *txn) error {
		if _, err := t.exec(`DELETE FROM dashboard_sessions WHERE id_hash IN (
			SELECT id_hash FROM dashboard_sessions WHERE token_hash = ?1
			ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?2)`, s.TokenHash[:], max(l.MaxPerToken-1, 0)); err != nil {
			return err
		}
		count := func() (n int, err error) {
			err = t.queryRow(`SELECT count(*) FROM dashboard_sessions`).Scan(&n)
			return n, err
		}
		n, err := count()
		if err != nil {
			return err
		}
		if n >= l.MaxTotal {
			// Full: the expired sessions go, only now.
			if _, err := t.exec(`DELETE FROM dashboard_sessions WHERE last_seen < ?1 OR created_at < ?2`,
				ms(l.IdleBefore), ms(l.CreatedBefore)); err != nil {
				return err
			}
			if n, err = count(); err != nil {
				return err
			}
			if n >= l.MaxTotal {
				return driver.ErrTooManySessions
			}
		}
		_, err = t.exec(`INSERT INTO dashboard_sessions (id_hash, token_hash, csrf, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)`,
			s.IDHash[:], s.TokenHash[:], s.CSRF, ms(s.CreatedAt), ms(s.LastSeen))
		return err
	})
}

// Session implements driver.Sessions.
func (db *DB) Session(ctx context.Context, h [32]byte) (driver.Session, error) {
	s := driver.Session{IDHash: h}
	if err := db.closedErr("reading a dashboard session"); err != nil {
		return s, err
	}
	var token []byte
	var created, seen int64
	err := db.SQL.QueryRowContext(ctx, `SELECT token_hash, csrf, created_at, last_seen FROM dashboard_sessions WHERE id_hash = ?1`,
		h[:]).Scan(&token, &s.CSRF, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return s, driver.ErrSessionNotFound
	}
	if err != nil {
		return s, wrapErr("reading a dashboard session", err)
	}
	copy(s.TokenHash[:], token)
	s.CreatedAt, s.LastSeen = time.UnixMilli(created), time.UnixMilli(seen)
	return s, nil
}

// TouchSession implements driver.Sessions.
func (db *DB) TouchSession(ctx context.Context, h [32]byte, now time.Time) error {
	return db.inTx(ctx, "touching a dashboard session", func(t *txn) error {
		_, err := t.exec(`UPDATE dashboard_sessions SET last_seen = ?2 WHERE id_hash = ?1`, h[:], ms(now))
		return err
	})
}

// DeleteSession implements driver.Sessions.
func (db *DB) DeleteSession(ctx context.Context, h [32]byte) error {
	return db.inTx(ctx, "deleting a dashboard session", func(t *txn) error {
		_, err := t.exec(`DELETE FROM dashboard_sessions WHERE id_hash = ?1`, h[:])
		return err
	})
}
