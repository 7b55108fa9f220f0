package postgres

import (
	"context"
	"time"

	"github.com/ordo-sched/ordo/driver"
)

// NotifyChannel is the LISTEN/NOTIFY channel an enqueue notifies, in the
// same transaction, so workers in other processes wake within
// milliseconds instead of at their next poll.
const NotifyChannel = "ordo_jobs"

// Listen delivers a value (coalesced) on the returned channel whenever a
// transaction that enqueued jobs commits, from any process. It holds one
// connection of its own, reconnects after errors, and closes the channel
// when ctx ends or the DB is closed. Behind PgBouncer in transaction mode LISTEN does not
// work: use polling there.
func (db *DB) Listen(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	db.lifeMu.Lock()
	if db.closed {
		db.lifeMu.Unlock()
		return nil, wrap("listening for new jobs", driver.ErrClosed)
	}
	db.listeners.Add(1)
	db.lifeMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(db.life, cancel) // Close ends the listener too
	fail := func(err error) (<-chan struct{}, error) {
		stop()
		cancel()
		db.listeners.Done()
		return nil, wrap("listening for new jobs", err)
	}
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return fail(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		conn.Release()
		return fail(err)
	}
	go func() {
		defer db.listeners.Done()
		defer stop()
		defer cancel()
		defer close(out)
		for {
			_, err := conn.Conn().WaitForNotification(ctx)
			if err == nil {
				select {
				case out <- struct{}{}:
				default:
				}
				continue
			}
			// The connection is unusable after an error (or ctx's end).
			conn.Hijack().Close(context.Background())
			if ctx.Err() != nil {
				return
			}
			// Wake listeners anyway: a notification may have been lost
			// while the connection was down.
			select {
			case out <- struct{}{}:
			default:
			}
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
				if conn, err = db.Pool.Acquire(ctx); err != nil {
					continue
				}
				if _, err = conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
					conn.Hijack().Close(context.Background())
					continue
				}
				break
			}
		}
	}()
	return out, nil
}
