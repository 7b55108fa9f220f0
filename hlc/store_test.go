package hlc_test

import (
	"testing"

	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/hlc/hlctest"
)

func TestMemoryStoreConformance(t *testing.T) {
	hlctest.TestStateStore(t, func(t *testing.T) hlc.StateStore { return hlc.NewMemoryStore() })
}
