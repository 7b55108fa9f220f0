package postgres

import (
	"testing"
	"time"
)

// SetLogPartitionLockTimeout replaces logPartitionLockTimeout until t ends.
func SetLogPartitionLockTimeout(t testing.TB, d time.Duration) {
	old := logPartitionLockTimeout
	logPartitionLockTimeout = d
	t.Cleanup(func() { logPartitionLockTimeout = old })
}
