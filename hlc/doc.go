// Package hlc implements the Hybrid Logical Clock of Kulkarni, Demirbas,
// Madappa, Avva and Leone, "Logical Physical Clocks and Consistent Snapshots
// in Globally Distributed Databases" (OPODIS 2014), which ordo uses to order
// jobs across nodes deterministically.
//
// A Timestamp is (Physical, Logical, Node): Unix milliseconds, a counter for
// events within one millisecond, and the issuing node's id. Timestamps are
// totally ordered by physical, then logical, then node (as bytes), and the
// canonical text form "PPPPPPPPPPPPP-LLLLLL-node" sorts as plain bytes in
// that same order.
//
// Guarantees of a Clock, as proven in the paper and checked by this
// package's simulation tests:
//
//   - Monotonic: every timestamp a Clock issues is strictly greater than the
//     ones it issued before, whatever its wall clock does.
//   - Causal: if event e happened before event f (same node, or e sent a
//     message that f received), then ts(e) < ts(f). Receive returns a
//     timestamp strictly greater than both the local clock and the remote.
//   - Bounded: 0 <= l - pt <= epsilon, where pt is the node's wall clock and
//     epsilon the largest offset between the wall clocks of communicating
//     nodes, so HLC time stays close to physical time. Two deliberate
//     exceptions add a little: a counter overflow (more than 999,999 events
//     in one millisecond) moves l one millisecond ahead, and a restart
//     resumes above the persisted bound (at most Config.Reserve ahead).
//   - Bounded drift: a remote timestamp more than MaxDrift (the guide's
//     MaxClockDriftMs, default 60000) ahead of the local wall clock is
//     refused with a *DriftError, and the clock is left unchanged, so one
//     node with a wrong clock cannot drag the others into the future.
//   - Restart-safe: with a persistent StateStore, a restarted node never
//     issues a timestamp at or below one it issued before, even with its
//     wall clock set backwards, and it writes to the store only once per
//     Config.Reserve of clock progress, not on every tick.
//
// Now allocates nothing; the common path is one atomic compare-and-swap.
package hlc
