// Package driver is the contract between ordo and a storage backend. It
// is not for applications: they open a backend with store.Open (or
// ordo.Open) and use the queue, worker and audit packages, which are the
// only callers of a Driver.
//
// Invariants every backend keeps, checked by the one conformance suite in
// driver/drivertest:
//
//   - A backend implements all of Driver. What it cannot do it declares in
//     Capabilities, and the matching methods return an error wrapping
//     ErrNotSupported; nothing is discovered by type assertion.
//   - Every state change applies to every representation of the job
//     (legacy row and HLC state) in one transaction, fenced by the lease
//     token where the job is leased.
//   - Chain entries are computed by EnqueueBatch.Append while the backend
//     holds the chain's head lock, so t_hlc strictly increases along every
//     chain and the backend never does chain arithmetic of its own.
//   - scheduler_log is append-only: no method updates or deletes an entry.
//   - GetJob, FindJob (proofs), ListJobs and CountByStatus take the tenant
//     and enforce it in the query itself.
//
// Backends register themselves by URL scheme with Register, from an init
// function; adding one is a new package with a migrations folder and one
// call of drivertest.Run (docs/architecture.md).
package driver
