package queue

import (
	"errors"
	"fmt"
	"strings"
)

// Options are the guide's SchedulerHlcOptions, under the same names, so the
// configuration snippets of the migration guide map onto them one to one.
type Options struct {
	// EnableHlcOrdering reads (dequeues) in t_hlc order from the HLC side
	// instead of (priority DESC, created_at) from the legacy table.
	EnableHlcOrdering bool
	// DualWriteMode writes every job, and every change of its state, to
	// both the legacy table and the HLC side in one transaction.
	DualWriteMode bool
	// VerifyOnDequeue recomputes a job's link from its predecessor, its
	// t_hlc and its stored payload before handing it out; a job that does
	// not verify is withheld and marked chain_violation. It applies to every
	// dequeued job that has a chain entry, whichever side is read.
	VerifyOnDequeue bool
	// MaxClockDriftMs is the largest lead, in milliseconds, a chain head's
	// timestamp may have over this node's wall clock; an enqueue onto such
	// a chain is refused with a drift error. 0 means the default, 60000.
	MaxClockDriftMs int
}

// DefaultMaxClockDriftMs is the guide's default.
const DefaultMaxClockDriftMs = 60000

// MaxClockDriftMsLimit bounds MaxClockDriftMs at one day: a larger bound
// would let one wrong clock drag every chain a day into the future.
const MaxClockDriftMsLimit = 86_400_000

// DefaultOptions returns the guide's defaults: legacy ordering, no
// dual-write, no verification, 60000 ms drift.
func DefaultOptions() Options {
	return Options{MaxClockDriftMs: DefaultMaxClockDriftMs}
}

func (o Options) withDefaults() Options {
	if o.MaxClockDriftMs == 0 {
		o.MaxClockDriftMs = DefaultMaxClockDriftMs
	}
	return o
}

// ErrInvalidOptions is wrapped by every Validate error.
var ErrInvalidOptions = errors.New("queue: invalid options")

// Validate reports every invalid value at once.
func (o Options) Validate() error {
	var problems []string
	if o.MaxClockDriftMs < 1 || o.MaxClockDriftMs > MaxClockDriftMsLimit {
		problems = append(problems, fmt.Sprintf("MaxClockDriftMs = %d, want 1..%d", o.MaxClockDriftMs, MaxClockDriftMsLimit))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, strings.Join(problems, "; "))
	}
	return nil
}

// Mode is one row of the guide's table of EnableHlcOrdering and
// DualWriteMode, named after the migration phase it belongs to.
type Mode int

const (
	ModeLegacy       Mode = iota // legacy writes, legacy reads (before phase 1, and after rollback)
	ModeDualWrite                // both written, legacy reads (phase 1)
	ModeDualWriteHlc             // both written, HLC reads (phase 3)
	ModeHlcOnly                  // HLC written, HLC reads (phase 4)
)

// Mode returns the mode the options select.
func (o Options) Mode() Mode {
	switch {
	case o.EnableHlcOrdering && o.DualWriteMode:
		return ModeDualWriteHlc
	case o.EnableHlcOrdering:
		return ModeHlcOnly
	case o.DualWriteMode:
		return ModeDualWrite
	}
	return ModeLegacy
}

func (m Mode) String() string {
	switch m {
	case ModeDualWrite:
		return "dual-write"
	case ModeDualWriteHlc:
		return "hlc-reads"
	case ModeHlcOnly:
		return "hlc-only"
	}
	return "legacy"
}

// WritesLegacy reports whether enqueues write the legacy table.
func (m Mode) WritesLegacy() bool { return m != ModeHlcOnly }

// WritesHlc reports whether enqueues append to the HLC chain.
func (m Mode) WritesHlc() bool { return m != ModeLegacy }

// ReadsHlc reports whether dequeues read in t_hlc order.
func (m Mode) ReadsHlc() bool { return m == ModeDualWriteHlc || m == ModeHlcOnly }
