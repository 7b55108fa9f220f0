package hlc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxDrift is the guide's MaxClockDriftMs default: 60000 ms.
const DefaultMaxDrift = 60 * time.Second

// DefaultReserve is how far ahead of issued timestamps a Clock persists its
// upper bound. Larger means fewer store writes; the cost is that a restarted
// node's timestamps may run up to this far ahead of its wall clock.
const DefaultReserve = 2 * time.Second

// WallClock supplies physical time. Tests inject a ManualClock; production
// uses SystemClock.
type WallClock interface {
	UnixMilli() int64
}

// SystemClock reads the operating system's clock.
type SystemClock struct{}

// UnixMilli returns the current Unix time in milliseconds.
func (SystemClock) UnixMilli() int64 { return time.Now().UnixMilli() }

// ManualClock is a wall clock that moves only when told to. It is safe for
// concurrent use, so a test can move it while clocks read it.
type ManualClock struct{ ms atomic.Int64 }

// NewManualClock returns a ManualClock reading ms.
func NewManualClock(ms int64) *ManualClock {
	c := &ManualClock{}
	c.ms.Store(ms)
	return c
}

// UnixMilli returns the time last set.
func (c *ManualClock) UnixMilli() int64 { return c.ms.Load() }

// Set moves the clock to ms, forwards or backwards.
func (c *ManualClock) Set(ms int64) { c.ms.Store(ms) }

// Advance moves the clock by d, which may be negative.
func (c *ManualClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// ErrClockDrift is matched (errors.Is) by every *DriftError.
var ErrClockDrift = errors.New("hlc: clock drift exceeds maximum")

// DriftError refuses a remote timestamp whose physical part is further ahead
// of the local wall clock than the configured maximum. Accepting it would
// drag this node's clock (and every timestamp after it) into the future.
type DriftError struct {
	Remote   Timestamp     // the refused timestamp
	Observed time.Duration // how far Remote is ahead of the local wall clock
	Allowed  time.Duration // the configured maximum (MaxClockDriftMs)
}

func (e *DriftError) Error() string {
	return fmt.Sprintf("hlc: remote timestamp %s is %d ms ahead of the local wall clock; at most %d ms allowed (MaxClockDriftMs)",
		e.Remote, e.Observed.Milliseconds(), e.Allowed.Milliseconds())
}

// Is makes errors.Is(err, ErrClockDrift) true.
func (e *DriftError) Is(target error) bool { return target == ErrClockDrift }

// ErrClockExhausted means the physical part would pass MaxPhysical.
var ErrClockExhausted = errors.New("hlc: physical time beyond the year 2286 cannot be represented")

// Config configures a Clock. Only Node is required.
type Config struct {
	Node     string        // this node's id; see ValidateNodeID
	Wall     WallClock     // default SystemClock{}
	MaxDrift time.Duration // default DefaultMaxDrift; must be positive
	Store    StateStore    // default a fresh MemoryStore (no restart safety)
	Reserve  time.Duration // default DefaultReserve; must be positive
	// StoreTimeout bounds a store write made while issuing a timestamp.
	StoreTimeout time.Duration // default 5s
}

// Clock is a hybrid logical clock after Kulkarni et al. It is safe for
// concurrent use.
//
// The last issued (physical, logical) pair is packed into one uint64 so the
// common path is a single compare-and-swap with no lock and no allocation:
// 44 bits hold any 13-digit physical value and 20 bits any 6-digit counter.
type Clock struct {
	node     string
	wall     WallClock
	maxDrift atomic.Int64 // ms; changeable at run time (MaxClockDriftMs reload)
	reserve  int64        // ms
	timeout  time.Duration
	store    StateStore

	state atomic.Uint64 // packed last issued (physical, logical)
	bound atomic.Int64  // persisted upper bound: every issued physical is below it
	// withData: the store's owner persists bounds with its data, so the
	// clock never writes (see StateStore.BoundWrittenWithData) and bound stays unlimited.
	withData bool

	persistMu sync.Mutex // serialises store writes
}

const logicalBits = 20

func pack(physical int64, logical uint32) uint64 {
	return uint64(physical)<<logicalBits | uint64(logical)
}

func unpack(s uint64) (int64, uint32) {
	return int64(s >> logicalBits), uint32(s & (1<<logicalBits - 1))
}

// New returns a Clock for cfg.Node. It loads the node's persisted upper
// bound from cfg.Store and starts above it, so a restarted node never
// issues a timestamp at or below one it issued before, even if its wall
// clock has gone backwards.
func New(ctx context.Context, cfg Config) (*Clock, error) {
	if err := ValidateNodeID(cfg.Node); err != nil {
		return nil, err
	}
	if cfg.Wall == nil {
		cfg.Wall = SystemClock{}
	}
	if cfg.MaxDrift == 0 {
		cfg.MaxDrift = DefaultMaxDrift
	}
	if cfg.MaxDrift < time.Millisecond {
		return nil, fmt.Errorf("hlc: MaxDrift %v must be at least 1ms", cfg.MaxDrift)
	}
	if cfg.Reserve == 0 {
		cfg.Reserve = DefaultReserve
	}
	if cfg.Reserve < time.Millisecond {
		return nil, fmt.Errorf("hlc: Reserve %v must be at least 1ms", cfg.Reserve)
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	c := &Clock{
		node:    cfg.Node,
		wall:    cfg.Wall,
		reserve: cfg.Reserve.Milliseconds(),
		timeout: cfg.StoreTimeout,
		store:   cfg.Store,
	}
	c.maxDrift.Store(cfg.MaxDrift.Milliseconds())
	bound, err := cfg.Store.Load(ctx, cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("hlc: loading state of node %s: %w", cfg.Node, err)
	}
	if bound < 0 || bound > MaxPhysical {
		return nil, fmt.Errorf("hlc: stored upper bound %d of node %s is out of range", bound, cfg.Node)
	}
	// Nothing at or above the stored bound was issued, so starting at
	// (bound, 0) makes the next timestamp greater than all earlier ones.
	// The in-memory bound equals it, so the first tick persists a new one.
	c.state.Store(pack(bound, 0))
	c.bound.Store(bound)
	if cfg.Store.BoundWrittenWithData() {
		c.withData = true
		c.bound.Store(MaxPhysical + 1)
	}
	return c, nil
}

// NodeID returns the node id timestamps carry.
func (c *Clock) NodeID() string { return c.node }

// MaxDrift returns the largest accepted lead of a remote timestamp.
func (c *Clock) MaxDrift() time.Duration { return time.Duration(c.maxDrift.Load()) * time.Millisecond }

// SetMaxDrift changes the largest accepted lead of a remote timestamp, so a
// reloaded MaxClockDriftMs takes effect without recreating the clock.
func (c *Clock) SetMaxDrift(d time.Duration) error {
	if d < time.Millisecond {
		return fmt.Errorf("hlc: MaxDrift %v must be at least 1ms", d)
	}
	c.maxDrift.Store(d.Milliseconds())
	return nil
}

// Current returns the last issued timestamp without advancing the clock.
// Right after New it is the restored floor, which was never issued.
func (c *Clock) Current() Timestamp {
	p, l := unpack(c.state.Load())
	return Timestamp{Physical: p, Logical: l, Node: c.node}
}

// Wall returns the wall clock reading, for drift reports.
func (c *Clock) Wall() int64 { return c.wall.UnixMilli() }

// Now issues a timestamp for a local or send event (the paper's rule:
// l' = max(l, pt); the counter resets when l moves, else increments). It is
// strictly greater than every timestamp this clock issued before. The only
// errors come from persisting the upper bound, which happens once per
// Reserve of clock progress, and from exhausting the representable range.
func (c *Clock) Now() (Timestamp, error) {
	return c.update(func(l int64, lc uint32, pt int64) (int64, uint32, error) {
		if pt > l {
			return pt, 0, nil
		}
		nl, nc := advance(l, lc+1)
		return nl, nc, nil
	})
}

// Receive merges a timestamp seen on a message or a stored record (the
// paper's receive rule: l' = max(l, l_m, pt) with the counter taken from
// whichever of them l' equals, plus one). The result is strictly greater
// than both the local clock and remote. A remote more than MaxDrift ahead of
// the local wall clock is refused with a *DriftError and the clock is left
// unchanged.
func (c *Clock) Receive(remote Timestamp) (Timestamp, error) {
	if err := remote.Validate(); err != nil {
		return Timestamp{}, fmt.Errorf("hlc: receive: %w", err)
	}
	return c.update(func(l int64, lc uint32, pt int64) (int64, uint32, error) {
		if ahead, allowed := remote.Physical-pt, c.maxDrift.Load(); ahead > allowed {
			return 0, 0, &DriftError{
				Remote:   remote,
				Observed: time.Duration(ahead) * time.Millisecond,
				Allowed:  time.Duration(allowed) * time.Millisecond,
			}
		}
		nl := max(l, remote.Physical, pt)
		var nc uint32
		switch {
		case nl == l && nl == remote.Physical:
			nc = max(lc, remote.Logical) + 1
		case nl == l:
			nc = lc + 1
		case nl == remote.Physical:
			nc = remote.Logical + 1
		default:
			nc = 0
		}
		nl, nc = advance(nl, nc)
		return nl, nc, nil
	})
}

// update moves the clock to the time next computes from the clock's time
// (l, lc) and the wall clock's pt, the one loop of Now and Receive. A time
// at or past the persisted upper bound is issued only once the bound has
// been raised past it, so that a restarted node never issues it again;
// a compare-and-swap publishes the time, and when another goroutine moved
// the clock first, next runs again on the clock's new time.
func (c *Clock) update(next func(l int64, lc uint32, pt int64) (int64, uint32, error)) (Timestamp, error) {
	for {
		old := c.state.Load()
		l, lc := unpack(old)
		nl, nc, err := next(l, lc, c.wall.UnixMilli())
		if err != nil {
			return Timestamp{}, err
		}
		if nl >= c.bound.Load() {
			if err := c.persist(nl); err != nil {
				return Timestamp{}, err
			}
			continue
		}
		if c.state.CompareAndSwap(old, pack(nl, nc)) {
			return Timestamp{Physical: nl, Logical: nc, Node: c.node}, nil
		}
	}
}

// advance keeps the counter within six digits by moving to the next
// millisecond, which preserves order because (l+1, 0) > (l, anything).
func advance(l int64, c uint32) (int64, uint32) {
	if c > MaxLogical {
		return l + 1, 0
	}
	return l, c
}

// persist raises the stored upper bound above physical before any
// timestamp at or past the old bound is issued.
func (c *Clock) persist(physical int64) error {
	if physical > MaxPhysical {
		return ErrClockExhausted
	}
	if c.withData {
		return nil
	}
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	if physical < c.bound.Load() {
		return nil // another goroutine got there first
	}
	next := min(physical+c.reserve, MaxPhysical+1)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.store.Save(ctx, c.node, next); err != nil {
		return fmt.Errorf("hlc: persisting upper bound of node %s: %w", c.node, err)
	}
	c.bound.Store(next)
	return nil
}
