package driver

import (
	"encoding/json"
	"fmt"
	"time"
)

// MaxAttemptErrors is how many attempt errors a job keeps: the newest,
// as River keeps its errors array, so a job retried for days cannot grow
// its row without bound.
const MaxAttemptErrors = 20

// MaxAttemptErrorChars bounds one kept error's text (in characters): the
// history is for reading on a job page, last_error keeps the whole text.
const MaxAttemptErrorChars = 4096

// AttemptError is one failed attempt as a job's history keeps it. Every
// backend appends one, in the same fenced UPDATE, whenever an attempt
// ends with an error: a failure (retried or final), a cancel by the
// job's own handler, a chain violation found on dequeue, a lease that
// expired. A successful attempt or a snooze appends none.
type AttemptError struct {
	At      time.Time // when the attempt ended, to the millisecond
	Attempt int       // the attempt's number, from 1
	Error   string    // at most MaxAttemptErrorChars characters
	Worker  string    // the lease owner that ran it (worker id or node)
}

// storedAttemptError is AttemptError as the attempt_errors column holds
// it (a JSON array of these, oldest first), alike on every backend.
type storedAttemptError struct {
	At      int64  `json:"at"` // Unix milliseconds
	Attempt int    `json:"attempt"`
	Error   string `json:"error"`
	Worker  string `json:"worker"`
}

// DecodeAttemptErrors reads an attempt_errors column; NULL (nil or
// empty) is no history.
func DecodeAttemptErrors(stored []byte) ([]AttemptError, error) {
	if len(stored) == 0 {
		return nil, nil
	}
	var rows []storedAttemptError
	if err := json.Unmarshal(stored, &rows); err != nil {
		return nil, fmt.Errorf("attempt_errors is not a JSON array of attempt errors: %w", err)
	}
	out := make([]AttemptError, len(rows))
	for i, r := range rows {
		out[i] = AttemptError{At: time.UnixMilli(r.At).UTC(), Attempt: r.Attempt, Error: r.Error, Worker: r.Worker}
	}
	return out, nil
}
