package postgres

import (
	"context"
	"time"
)

// NotifyChannel is the LISTEN/NOTIFY channel an enqueue notifies, in the
// same transaction, so workers in other processes wake within
// milliseconds instead of at their next poll.
const NotifyChannel = "ordo_jobs"

// Listen delivers a value (coalesced) on the returned channel whenever a
// transaction that enqueued jobs commits, from any process. It holds one
// connection of its own, reconnects after errors, and closes the channel
// when ctx ends. Behind PgBouncer in transaction mode LISTEN does not
// work: use polling there.
func (db *DB) Listen(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, wrap("listening for new jobs", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		conn.Release()
		return nil, wrap("listening for new jobs", err)
	}
	go func() {
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
