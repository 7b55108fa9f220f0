package postgres

import (
	"fmt"

	"github.com/ordo-sched/ordo/driver"
)

// attemptErrorsAfter is the value of alias's attempt_errors once an
// attempt that ended at atExpr (timestamptz) with errExpr (text) is
// appended: the oldest entry leaves when driver.MaxAttemptErrors are
// kept. It reads the row's old attempts and lease_owner, which is what
// an UPDATE's SET sees, so it must be used in the UPDATE that ends the
// attempt.
func attemptErrorsAfter(alias, atExpr, errExpr string) string {
	return fmt.Sprintf(`(CASE WHEN jsonb_array_length(COALESCE(%[1]s.attempt_errors, '[]'::jsonb)) >= %[4]d
		THEN %[1]s.attempt_errors - 0 ELSE COALESCE(%[1]s.attempt_errors, '[]'::jsonb) END)
		|| jsonb_build_array(jsonb_build_object('at', floor(extract(epoch FROM %[2]s) * 1000)::bigint,
			'attempt', %[1]s.attempts, 'error', left(%[3]s, %[5]d), 'worker', COALESCE(%[1]s.lease_owner, '')))`,
		alias, atExpr, errExpr, driver.MaxAttemptErrors, driver.MaxAttemptErrorChars)
}
