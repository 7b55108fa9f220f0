package hlc

import (
	"context"
	"errors"
	"sync"
)

// StateStore persists, per node, an upper bound on the physical part of
// every timestamp the node has issued. A Clock writes a new bound only when
// its time reaches the old one, so the store sees one write per Reserve of
// clock progress rather than one per timestamp.
//
// Implementations must be monotonic: Save never lowers a stored bound (a
// stale writer racing a newer one must lose), and Load returns 0 for a node
// never saved.
type StateStore interface {
	Load(ctx context.Context, node string) (int64, error)
	Save(ctx context.Context, node string, bound int64) error

	// BoundWrittenWithData reports whether the store's owner writes the
	// bound together with the data: every transaction that stores a
	// timestamp also raises the node's bound above it, atomically. A Clock
	// on such a store never calls Save itself, only Load at start. This is
	// what a single-writer database needs (SQLite), where the clock could
	// not write on a connection of its own while the transaction that
	// asked for the timestamp holds the write lock; and it is safe whatever
	// that transaction does, since a rolled-back timestamp was never
	// stored anywhere.
	BoundWrittenWithData() bool
}

// ErrStoreClosed is returned by a closed MemoryStore, so tests can simulate
// a store that went away.
var ErrStoreClosed = errors.New("hlc: state store closed")

// MemoryStore keeps bounds in memory. It survives a Clock being recreated in
// the same process (which is what tests of the restart rule need), not a
// process restart.
type MemoryStore struct {
	mu     sync.Mutex
	bounds map[string]int64
	saves  int
	closed bool
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{bounds: map[string]int64{}} }

// Load returns the bound saved for node, or 0.
func (s *MemoryStore) Load(_ context.Context, node string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrStoreClosed
	}
	return s.bounds[node], nil
}

// Save raises node's bound to bound; a lower value is ignored.
func (s *MemoryStore) Save(_ context.Context, node string, bound int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	s.saves++
	if bound > s.bounds[node] {
		s.bounds[node] = bound
	}
	return nil
}

// Saves counts Save calls, so tests can check that ticks do not write.
// BoundWrittenWithData reports false: the Clock saves its own bounds.
func (s *MemoryStore) BoundWrittenWithData() bool { return false }

func (s *MemoryStore) Saves() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// Close makes every later call fail with ErrStoreClosed.
func (s *MemoryStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}
