package worker

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// EventType says what an Event reports.
type EventType int

const (
	// EventJobStarted: a leased job is about to run (Lease, Queue).
	EventJobStarted EventType = iota + 1
	// EventJobSucceeded: the handler returned nil and the job completed
	// (Lease, Queue, Duration).
	EventJobSucceeded
	// EventJobFailed: an attempt failed (Lease, Queue, Err, Retried,
	// RetryAt, Duration, Abandoned). Emitted for every failed attempt, so
	// a job's whole error history passes through the hooks even though the
	// queue keeps only the last error.
	EventJobFailed
	// EventJobCancelled: the handler returned JobCancel (Lease, Err).
	EventJobCancelled
	// EventJobSnoozed: the handler returned JobSnooze (Lease, RetryAt).
	EventJobSnoozed
	// EventJobReleased: Stop ran out of time and handed the job back to
	// the queue, attempt not counted (Lease).
	EventJobReleased
	// EventLeaseLost: the job's lease was gone when extending it or when
	// recording its outcome, because it expired and was rescued or the job
	// was cancelled (Lease, Err). Whatever the handler did was not recorded.
	EventLeaseLost
	// EventLeaseExtended: a heartbeat extended a running job's lease
	// (Lease, with the new ExpiresAt).
	EventLeaseExtended
	// EventLeadership: this client became (Leader true) or stopped being
	// the maintenance leader.
	EventLeadership
	// EventRescued: the leader returned jobs with expired leases to the
	// queue (Rescued) or failed them on their last attempt (RescueFailed).
	EventRescued
	// EventPeriodicEnqueued: an occurrence of a periodic job was enqueued
	// (Periodic, OccurrenceAt, JobID; Deduplicated when another client had
	// enqueued it already).
	EventPeriodicEnqueued
	// EventPruned: the leader deleted the state of jobs that finished
	// longer ago than Config.Retention keeps them (Pruned: rows per side).
	EventPruned
	// EventOutcomeRetrying: recording a job's outcome failed for a reason
	// other than the job's own state (the database restarting, a dropped
	// connection) and is being retried (Lease, Err); emitted once per job,
	// at the first failure. EventJobSucceeded and the like follow when the
	// write lands.
	EventOutcomeRetrying
)

func (t EventType) String() string {
	switch t {
	case EventJobStarted:
		return "job_started"
	case EventJobSucceeded:
		return "job_succeeded"
	case EventJobFailed:
		return "job_failed"
	case EventJobCancelled:
		return "job_cancelled"
	case EventJobSnoozed:
		return "job_snoozed"
	case EventJobReleased:
		return "job_released"
	case EventLeaseLost:
		return "lease_lost"
	case EventLeaseExtended:
		return "lease_extended"
	case EventLeadership:
		return "leadership"
	case EventRescued:
		return "rescued"
	case EventPeriodicEnqueued:
		return "periodic_enqueued"
	case EventPruned:
		return "pruned"
	case EventOutcomeRetrying:
		return "outcome_retrying"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one thing that happened in a client; which fields are set
// depends on Type (see the EventType constants).
type Event struct {
	Type  EventType
	Time  time.Time // the client's clock (Config.Now)
	Queue string    // the client queue that ran the job
	Lease queue.Lease
	Err   error
	// Retried: a failed attempt will run again, at RetryAt. RetryAt is also
	// when a snoozed job wakes.
	Retried   bool
	RetryAt   time.Time
	Abandoned bool          // the attempt timed out and its handler was abandoned
	Duration  time.Duration // how long the handler ran (real time)

	Leader       bool
	Rescued      int
	RescueFailed int

	Pruned driver.PruneResult

	Periodic     string
	OccurrenceAt time.Time
	JobID        uuid.UUID
	Deduplicated bool
}

// eventBus hands events to Config.OnEvent and to subscribers.
type eventBus struct {
	onEvent func(Event)
	log     func(msg string, args ...any)

	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func (b *eventBus) emit(e Event) {
	if b.onEvent != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					b.log("worker: OnEvent hook panicked", "event", e.Type.String(), "panic", v)
				}
			}()
			b.onEvent(e)
		}()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			// A slow dashboard must not hold up the workers: it misses
			// events instead.
		}
	}
}

// Subscribe returns a channel receiving the client's events and a function
// that ends the subscription. Events that do not fit in the buffer are
// dropped, never waited for; use Config.OnEvent to see every event.
func (c *Client) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	c.events.mu.Lock()
	if c.events.subs == nil {
		c.events.subs = map[chan Event]struct{}{}
	}
	c.events.subs[ch] = struct{}{}
	c.events.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.events.mu.Lock()
			delete(c.events.subs, ch)
			c.events.mu.Unlock()
		})
	}
}
