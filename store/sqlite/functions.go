package sqlite

import (
	sqldriver "database/sql/driver"
	"fmt"

	"github.com/google/uuid"
	msqlite "modernc.org/sqlite"

	"github.com/ordo-sched/ordo/driver"
)

// The SQL functions ordo's statements call, registered with the driver
// before any connection opens. Registration is process-wide: the names
// carry ordo's prefix so they cannot collide with an application's.
func init() {
	// ordo_lease_token(secret, job_id) is driver.LeaseToken, as text:
	// the dequeue writes each job's own token in the UPDATE itself, so
	// both sides of a job get the same one in one statement each.
	msqlite.MustRegisterDeterministicScalarFunction("ordo_lease_token", 2, func(_ *msqlite.FunctionContext, args []sqldriver.Value) (sqldriver.Value, error) {
		var ids [2]uuid.UUID
		for i, a := range args {
			text, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("ordo_lease_token: argument %d is %T, want a UUID as text", i+1, a)
			}
			var err error
			if ids[i], err = uuid.Parse(text); err != nil {
				return nil, fmt.Errorf("ordo_lease_token: argument %d: %w", i+1, err)
			}
		}
		return driver.LeaseToken(ids[0], ids[1]).String(), nil
	})
}
