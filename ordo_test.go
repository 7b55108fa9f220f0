package ordo_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
)

// One code path, two URLs: the same enqueue and dequeue on both backends.
func TestOpenBothBackends(t *testing.T) {
	ctx := context.Background()
	for name, url := range map[string]string{
		"sqlite":   "sqlite:" + filepath.Join(t.TempDir(), "ordo.db"),
		"postgres": testdb.NewDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			q, err := ordo.Open(ctx, url, ordo.Config{Node: "n1", Hlc: queue.Options{EnableHlcOrdering: true, DualWriteMode: true}})
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			res, err := q.Enqueue(ctx, queue.Job{TenantID: "acme", Kind: "k", Payload: []byte(`{}`)})
			if err != nil || res.THLC == "" {
				t.Fatalf("enqueue: %+v, %v", res, err)
			}
			if ts, err := hlc.Parse(res.THLC); err != nil || ts.Node != "n1" {
				t.Fatalf("t_hlc %q: %v", res.THLC, err)
			}
			leases, err := q.Dequeue(ctx, queue.DequeueOptions{})
			if err != nil || len(leases) != 1 || leases[0].JobID != res.JobID {
				t.Fatalf("dequeue: %v, %v", leases, err)
			}
			if err := q.Complete(ctx, leases[0]); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	if _, err := ordo.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "o.db"), ordo.Config{Node: "bad node"}); !errors.Is(err, hlc.ErrInvalidNodeID) {
		t.Errorf("bad node id: %v", err)
	}
	if _, err := ordo.Open(ctx, "mysql://x", ordo.Config{Node: "n"}); err == nil {
		t.Error("a mysql URL was accepted")
	}
	if _, err := ordo.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "o.db"), ordo.Config{Node: "n", Hlc: queue.Options{MaxClockDriftMs: -1}}); !errors.Is(err, queue.ErrInvalidOptions) {
		t.Errorf("negative MaxClockDriftMs: %v", err)
	}
}
