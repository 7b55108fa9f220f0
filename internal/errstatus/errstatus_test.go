package errstatus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
)

func TestOf(t *testing.T) {
	cases := []struct {
		err  error
		http int
		code string
	}{
		// The caller's mistakes: 4xx.
		{driver.ErrJobNotFound, http.StatusNotFound, "not_found"},
		{driver.ErrLeaseLost, http.StatusConflict, "lease_lost"},
		{driver.ErrJobFinished, http.StatusConflict, "job_finished"},
		{driver.ErrNotRetryable, http.StatusConflict, "not_retryable"},
		{driver.ErrInvalidJob, http.StatusBadRequest, "invalid_field"},
		{driver.ErrInvalidList, http.StatusBadRequest, "invalid_field"},
		{chain.ErrInvalidPayload, http.StatusBadRequest, "invalid_field"},
		{chain.ErrInvalidID, http.StatusBadRequest, "invalid_field"},
		{hlc.ErrInvalidNodeID, http.StatusBadRequest, "invalid_field"},
		// Unable now, worth retrying: 503.
		{hlc.ErrClockDrift, http.StatusServiceUnavailable, "clock_drift"},
		{driver.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
		{context.Canceled, http.StatusServiceUnavailable, "unavailable"},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
		{driver.ErrNotSupported, http.StatusNotImplemented, "not_supported"},
		// Anything else is the service's own failure.
		{errors.New("disk on fire"), http.StatusInternalServerError, "internal"},
		{nil, http.StatusInternalServerError, "internal"},
	}
	for _, c := range cases {
		for _, err := range []error{c.err, fmt.Errorf("enqueue: tenant acme: %w", c.err)} {
			got := Of(err)
			if got.HTTP != c.http || got.Code != c.code {
				t.Errorf("Of(%v) = %d %s; want %d %s", err, got.HTTP, got.Code, c.http, c.code)
			}
			if got.Internal() != (c.http >= 500) {
				t.Errorf("Of(%v).Internal() = %v with status %d", err, got.Internal(), got.HTTP)
			}
		}
	}
}

// A job that is not found because its tenant is wrong must read as not
// found, not as a conflict, even when the chain of wrapping also names a
// later rule's error.
func TestFirstRuleWins(t *testing.T) {
	err := errors.Join(driver.ErrJobNotFound, driver.ErrJobFinished)
	if got := Of(err); got.HTTP != http.StatusNotFound {
		t.Errorf("Of(not found + finished) = %d; want 404", got.HTTP)
	}
}
