// Package errstatus is the one mapping from the errors of ordo's packages
// to HTTP statuses and the HTTP API's error codes. The API and the
// dashboard both answer through it, so the same failure never gets two
// statuses.
//
// Invariants:
//   - A caller's mistake (an invalid job, payload, identifier or list
//     filter; a job that is not there or not the caller's; a lease that is
//     gone; a job in a state the action does not apply to) is a 4xx, never
//     a 5xx.
//   - The service being unable to answer now (a closed or unreachable
//     database, a cancelled or timed-out request, a clock too far ahead
//     to stamp with)
//     is a 503: worth retrying.
//   - A capability the backend lacks is a 501.
//   - Any other error is a 500, and only 5xx errors are internal: their
//     details go to the log, never to the caller.
package errstatus

import (
	"context"
	"errors"
	"net/http"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

// Status is how an error is answered over HTTP.
type Status struct {
	HTTP int    // the HTTP status code
	Code string // the API's stable error code (docs/api.md)
}

// Internal reports whether the status is the service's own failure (5xx),
// whose details are logged and not shown.
func (s Status) Internal() bool { return s.HTTP >= http.StatusInternalServerError }

// Internal server error: what an error matched by no rule is answered with.
var internal = Status{http.StatusInternalServerError, "internal"}

// rules are tried in order; the first whose error the answer wraps wins.
var rules = []struct {
	err    error
	status Status
}{
	{driver.ErrJobNotFound, Status{http.StatusNotFound, "not_found"}},
	{driver.ErrLeaseLost, Status{http.StatusConflict, "lease_lost"}},
	{driver.ErrJobFinished, Status{http.StatusConflict, "job_finished"}},
	{driver.ErrNotRetryable, Status{http.StatusConflict, "not_retryable"}},
	{driver.ErrJobNotFinished, Status{http.StatusConflict, "job_not_finished"}},
	{driver.ErrIdempotencyConflict, Status{http.StatusConflict, "idempotency_conflict"}},
	{driver.ErrInvalidJob, Status{http.StatusBadRequest, "invalid_field"}},
	{driver.ErrInvalidList, Status{http.StatusBadRequest, "invalid_field"}},
	{chain.ErrInvalidPayload, Status{http.StatusBadRequest, "invalid_field"}},
	{chain.ErrInvalidID, Status{http.StatusBadRequest, "invalid_field"}},
	{hlc.ErrInvalidTimestamp, Status{http.StatusBadRequest, "invalid_field"}},
	{hlc.ErrInvalidNodeID, Status{http.StatusBadRequest, "invalid_field"}},
	{driver.ErrRecordNotFound, Status{http.StatusNotFound, "not_found"}},
	{driver.ErrTokenNotFound, Status{http.StatusNotFound, "not_found"}},
	{hlc.ErrClockDrift, Status{http.StatusServiceUnavailable, "clock_drift"}},
	{driver.ErrClosed, Status{http.StatusServiceUnavailable, "unavailable"}},
	{driver.ErrUnavailable, Status{http.StatusServiceUnavailable, "unavailable"}},
	{hlc.ErrStoreClosed, Status{http.StatusServiceUnavailable, "unavailable"}},
	{context.Canceled, Status{http.StatusServiceUnavailable, "unavailable"}},
	{context.DeadlineExceeded, Status{http.StatusServiceUnavailable, "unavailable"}},
	{driver.ErrNotSupported, Status{http.StatusNotImplemented, "not_supported"}},
}

// Of is the status err is answered with; nil is not an error to answer
// and gets 500, like any error no rule names.
func Of(err error) Status {
	for _, r := range rules {
		if errors.Is(err, r.err) {
			return r.status
		}
	}
	return internal
}
