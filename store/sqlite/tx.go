package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/ordo-sched/ordo/driver"
)

// sqlTx is what the queue code runs on: a *sql.Tx, the DB's own or, for
// EnqueueTx, the caller's. Everything goes through one transaction.
type sqlTx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt
}

var _ sqlTx = (*sql.Tx)(nil)

// stmtCache keeps one prepared statement per query text, so the queue's
// statements are planned once per connection rather than once per call.
//
// A statement can only be prepared on the DB while no transaction holds
// the single connection, so a query first met inside a transaction is
// prepared on that transaction (once, for the rest of it) and noted in
// want; the next transaction of this DB prepares the wanted ones before
// it begins. A cached statement joins a transaction with Tx.StmtContext,
// which reuses its compiled form on the same connection.
type stmtCache struct {
	mu   sync.Mutex
	m    map[string]*sql.Stmt
	want map[string]bool
}

// prepareWanted prepares the statements noted in want. It runs outside
// any transaction; a failure (say, a table that a migration has not
// created yet) just leaves the query uncached.
func (db *DB) prepareWanted(ctx context.Context) {
	c := &db.stmts
	c.mu.Lock()
	if len(c.want) == 0 {
		c.mu.Unlock()
		return
	}
	want := make([]string, 0, len(c.want))
	for q := range c.want {
		want = append(want, q)
	}
	clear(c.want)
	c.mu.Unlock()
	for _, q := range want {
		s, err := db.SQL.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		if _, dup := c.m[q]; dup {
			_ = s.Close()
		} else {
			c.m[q] = s
		}
		c.mu.Unlock()
	}
}

// txn is one transaction of the queue code with its statement lookup.
type txn struct {
	ctx   context.Context
	db    *DB
	tx    sqlTx
	local map[string]*sql.Stmt // statements of this transaction
}

// stmt returns query prepared for this transaction.
func (t *txn) stmt(query string) (*sql.Stmt, error) {
	if s, ok := t.local[query]; ok {
		return s, nil
	}
	c := &t.db.stmts
	c.mu.Lock()
	cached := c.m[query]
	if cached == nil {
		if c.want == nil {
			c.want = map[string]bool{}
		}
		c.want[query] = true
	}
	c.mu.Unlock()
	var s *sql.Stmt
	if cached != nil {
		s = t.tx.StmtContext(t.ctx, cached)
	} else {
		var err error
		if s, err = t.tx.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
	}
	if t.local == nil {
		t.local = map[string]*sql.Stmt{}
	}
	t.local[query] = s
	return s, nil
}

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(t.ctx, args...)
}

// collectRows reads every row of rows with scan and closes rows, as
// pgx.CollectRows does on PostgreSQL.
func collectRows[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (t *txn) query(query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(t.ctx, args...)
}

func (t *txn) queryRow(query string, args ...any) *sql.Row {
	s, err := t.stmt(query)
	if err != nil {
		// A *sql.Row cannot be built with an error; QueryRowContext on
		// the transaction reports the same preparation error on Scan.
		return t.tx.QueryRowContext(t.ctx, query, args...)
	}
	return s.QueryRowContext(t.ctx, args...)
}

// affected runs query and returns how many rows it changed.
func (t *txn) affected(query string, args ...any) (int64, error) {
	res, err := t.exec(query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// inTx runs fn in one transaction (BEGIN IMMEDIATE, from the DSN's
// _txlock) and commits, or rolls back if fn fails. what names the
// operation in errors; the queue's sentinel errors are returned as they
// are, everything else wrapped (errors.Is and errors.As still see through
// it, e.g. to an *hlc.DriftError).
func (db *DB) inTx(ctx context.Context, what string, fn func(t *txn) error) error {
	if err := db.closedErr(what); err != nil {
		return err
	}
	db.prepareWanted(ctx)
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		if db.closed.Load() {
			return fmt.Errorf("sqlite: %s: %w", what, driver.ErrClosed)
		}
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	t := &txn{ctx: ctx, db: db, tx: tx}
	if err = fn(t); err == nil {
		if err = tx.Commit(); err == nil {
			return nil
		}
	} else {
		_ = tx.Rollback()
	}
	return wrapErr(what, err)
}

// closedErr is the error of an operation on a closed DB, or nil.
func (db *DB) closedErr(what string) error {
	if db.closed.Load() {
		return fmt.Errorf("sqlite: %s: %w", what, driver.ErrClosed)
	}
	return nil
}

// wrapErr names the operation, leaving the queue's sentinels bare.
func wrapErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case err == driver.ErrLeaseLost, err == driver.ErrJobNotFound, err == driver.ErrJobFinished:
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// Helpers for the SQLite representation: times as Unix milliseconds,
// UUIDs as canonical text, NULL for absent values.

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// nullMS is a nullable time: NULL for the zero time.
func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullUUID(id uuid.UUID) any {
	if id == (uuid.UUID{}) {
		return nil
	}
	return id.String()
}

// idList encodes ids as a JSON array for json_each(?).
func idList(ids []uuid.UUID) string {
	var b strings.Builder
	b.Grow(len(ids)*39 + 2)
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(id.String())
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

// kindList encodes the kinds filter for json_each(?): NULL for all kinds.
func kindList(kinds []string) any {
	if len(kinds) == 0 {
		return nil
	}
	b, _ := json.Marshal(kinds) // []string always marshals
	return string(b)
}
