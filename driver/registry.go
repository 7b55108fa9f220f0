package driver

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// ErrNotSupported is wrapped by the error of every method a backend does
// not implement (see Capabilities).
var ErrNotSupported = errors.New("driver: not supported by this backend")

// NotSupported returns the error a backend's method returns for a
// capability it lacks, naming both.
func NotSupported(backend, capability string) error {
	return fmt.Errorf("%w: %s has no %s", ErrNotSupported, backend, capability)
}

// Opener opens a backend from its URL (the whole URL, scheme included).
type Opener func(ctx context.Context, url string) (Driver, error)

// Backend is what a backend package registers.
type Backend struct {
	// Schemes are the URL schemes it answers (the part before the first
	// ':', e.g. "postgres" and "postgresql").
	Schemes []string
	// Usage is the URL form it takes, for error messages
	// ("postgres://...").
	Usage string
	Open  Opener
}

var (
	registryMu sync.RWMutex
	byScheme   = map[string]Backend{}
	usages     []string
)

// Register makes a backend available under its URL schemes. Backends
// call it from an init function, as database/sql drivers do; registering
// a scheme twice panics, since it can only be a programming error.
func Register(b Backend) {
	registryMu.Lock()
	defer registryMu.Unlock()
	for _, s := range b.Schemes {
		if _, dup := byScheme[s]; dup {
			panic("driver: Register called twice for scheme " + s)
		}
		byScheme[s] = b
	}
	usages = append(usages, b.Usage)
	sort.Strings(usages)
}

// Open opens the backend registered for url's scheme.
func Open(ctx context.Context, url string) (Driver, error) {
	scheme, _, ok := strings.Cut(url, ":")
	registryMu.RLock()
	b, known := byScheme[scheme]
	registryMu.RUnlock()
	if !ok || !known {
		return nil, fmt.Errorf("store: database URL %q: want %s", url, strings.Join(Usages(), " or "))
	}
	return b.Open(ctx, url)
}

// Usages lists the URL forms of the registered backends, sorted.
func Usages() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return append([]string(nil), usages...)
}
