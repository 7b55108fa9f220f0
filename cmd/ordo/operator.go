package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/store"
)

// defaultActor is who an operator action is recorded as when --by is not
// given: the login running the command, so the record and paused_by say
// more than "someone, with the CLI".
func defaultActor() string {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if name == "" {
		name = os.Getenv("USER")
	}
	if name == "" {
		return "cli"
	}
	return "cli:" + name
}

// checkActor refuses a --by that could not be stored or shown as given.
func checkActor(by string) error {
	switch {
	case by == "":
		return errors.New("--by: empty; give who is acting, or leave it out")
	case len(by) > 200:
		return fmt.Errorf("--by is %d bytes, at most 200", len(by))
	case !utf8.ValidString(by) || strings.ContainsFunc(by, unicode.IsControl):
		return fmt.Errorf("--by %q: want valid UTF-8 without control characters", by)
	}
	return nil
}

// recordAction keeps an operator action in scheduler.operator_actions, as
// the dashboard does, so its queue and job pages list what was done from
// the CLI too. The action itself is done by then: a failure to record it
// is a warning, not a failed command.
func recordAction(cmd *cobra.Command, db store.DB, a driver.OperatorAction) {
	if err := db.RecordAction(cmd.Context(), a); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "ordo: warning: %s %s was done, but recording it as an operator action failed: %v\n", a.Action, actionTarget(a), err)
	}
}

func actionTarget(a driver.OperatorAction) string {
	if a.JobID != uuid.Nil {
		return "job " + a.JobID.String()
	}
	return "queue " + queueName(driver.QueueKey{TenantID: a.TenantID, Kind: a.Kind})
}

// queueName is how a queue is named in output: "acme (every kind)" or
// "acme/email.send".
func queueName(k driver.QueueKey) string {
	if k.Kind == "" {
		return k.TenantID + " (every kind)"
	}
	return k.String()
}
