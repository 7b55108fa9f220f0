package sqlite

import (
	"fmt"

	"github.com/ordo-sched/ordo/driver"
)

// attemptErrorsAfter is the value of attempt_errors once an attempt that
// ended at atMS (Unix ms) with errExpr (text) is appended: the oldest
// entry leaves when driver.MaxAttemptErrors are kept. It reads the row's
// old attempts and lease_owner, which is what an UPDATE's SET sees, so
// it must be used in the UPDATE that ends the attempt. The JSON is the
// PostgreSQL store's (see its attemptErrorsAfter).
func attemptErrorsAfter(atMS, errExpr string) string {
	return fmt.Sprintf(`json_insert(CASE WHEN json_array_length(COALESCE(attempt_errors, '[]')) >= %[3]d
		THEN json_remove(attempt_errors, '$[0]') ELSE COALESCE(attempt_errors, '[]') END,
		'$[#]', json_object('at', %[1]s, 'attempt', attempts, 'error', substr(%[2]s, 1, %[4]d), 'worker', COALESCE(lease_owner, '')))`,
		atMS, errExpr, driver.MaxAttemptErrors, driver.MaxAttemptErrorChars)
}
