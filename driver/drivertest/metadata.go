package drivertest

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// storedMetadata reads a job's metadata on one side ("jobs" or
// "job_state"), as the backend decodes it.
func (h *harness) storedMetadata(table, idCol string, id uuid.UUID) map[string]string {
	h.t.Helper()
	var raw *string
	q := fmt.Sprintf("SELECT CAST(metadata AS TEXT) FROM {%s} WHERE %s = ?", table, idCol)
	if err := h.tg.DB.QueryRowContext(h.ctx, h.sql(q), id.String()).Scan(&raw); err != nil {
		h.t.Fatalf("%s (job %s): %v", q, id, err)
	}
	if raw == nil {
		return nil
	}
	m, err := driver.DecodeMetadata([]byte(*raw))
	if err != nil {
		h.t.Fatalf("job %s on %s: %v", id, table, err)
	}
	return m
}

// testMetadata: a job's metadata comes back whole with its lease and its
// stored state, on every side that holds it, in every mode; it changes
// neither the job id nor the payload hash; a deduplicated enqueue keeps
// the first job's; invalid metadata is refused with ErrInvalidJob naming
// what was wrong, and nothing of the batch is written.
func testMetadata(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		meta := map[string]string{
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"tracestate":  "vendor=é,other=1",
		}
		j := job("meta", "", 1)
		plainID := jobID(t, j)
		j.Metadata = meta
		r := n.enqueue(j)
		if r.JobID != plainID {
			t.Errorf("metadata changed the job id: %s, want %s", r.JobID, plainID)
		}
		again := job("meta", "", 1)
		again.Metadata = map[string]string{"traceparent": "00-00000000000000000000000000000001-0000000000000001-01"}
		if d := n.enqueue(again); !d.Deduplicated || d.JobID != r.JobID {
			t.Errorf("the same payload with other metadata: %+v, want deduplicated into %s", d, r.JobID)
		}
		plain := n.enqueue(job("meta", "", 2))

		for _, s := range []struct {
			table, col string
			holds      bool
		}{{"jobs", "id", o.Mode().WritesLegacy()}, {"job_state", "job_id", o.Mode().WritesHlc()}} {
			if !s.holds {
				continue
			}
			if got := h.storedMetadata(s.table, s.col, r.JobID); !maps.Equal(got, meta) {
				t.Errorf("%s row: metadata %v, want the first enqueue's %v", s.table, got, meta)
			}
			if got := h.storedMetadata(s.table, s.col, plain.JobID); got != nil {
				t.Errorf("%s row of a job enqueued without metadata: %v, want NULL", s.table, got)
			}
		}
		if got := n.get(r.JobID).Metadata; !maps.Equal(got, meta) {
			t.Errorf("JobInfo.Metadata %v, want %v", got, meta)
		}
		leases := n.dequeue(queue.DequeueOptions{TenantID: "meta", Limit: 10})
		if len(leases) != 2 {
			t.Fatalf("dequeued %d jobs, want 2", len(leases))
		}
		for _, l := range leases {
			want := meta
			if l.JobID == plain.JobID {
				want = nil
			}
			if !maps.Equal(l.Metadata, want) || (want == nil) != (l.Metadata == nil) {
				t.Errorf("lease of %s: metadata %v, want %v", l.JobID, l.Metadata, want)
			}
		}

		before := h.rows()
		for _, c := range []struct {
			name, want string
			m          map[string]string
		}{
			{"empty key", `metadata key ""`, map[string]string{"": "x"}},
			{"key with a space", `metadata key "trace parent"`, map[string]string{"trace parent": "x"}},
			{"key too long", "metadata key", map[string]string{strings.Repeat("k", driver.MaxMetadataKeyBytes+1): "x"}},
			{"invalid UTF-8", `metadata "k": the value is not valid UTF-8`, map[string]string{"k": "\xff"}},
			{"U+0000", `metadata "k": the value contains U+0000`, map[string]string{"k": "a\x00b"}},
			{"too large", "metadata is", map[string]string{"k": strings.Repeat("v", driver.MaxMetadataBytes)}},
			{"too many keys", "metadata has", func() map[string]string {
				m := map[string]string{}
				for i := range driver.MaxMetadataKeys + 1 {
					m[fmt.Sprint("k", i)] = "v"
				}
				return m
			}()},
		} {
			ok, bad := job("meta-bad", "", 1), job("meta-bad", "", 2)
			bad.Metadata = c.m
			_, err := n.q.EnqueueMany(h.ctx, []queue.Job{ok, bad})
			if err == nil || !strings.Contains(err.Error(), queue.ErrInvalidJob.Error()) || !strings.Contains(err.Error(), c.want) ||
				!strings.Contains(err.Error(), "job 1") {
				t.Errorf("%s: EnqueueMany error %v; want ErrInvalidJob naming job 1 and %q", c.name, err, c.want)
			}
		}
		if after := h.rows(); after != before {
			t.Errorf("refused batches wrote rows: %+v, then %+v", before, after)
		}
	})
}

// testMetadataMigrates: the metadata moves with the job across the
// guide's switches: backfill and the rollback drain carry it.
func testMetadataMigrates(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		meta := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
		withMeta := func(tenant string) queue.Job {
			j := job(tenant, "", 1)
			j.Metadata = meta
			return j
		}
		legacy := h.newNode("node-a", base, modes[0])
		lid := legacy.enqueue(withMeta("old")).JobID
		dual := h.newNode("node-b", base+1000, modes[1])
		if k, err := dual.q.Backfill(h.ctx, "old"); err != nil || k != 1 {
			t.Fatalf("Backfill = %d, %v; want 1", k, err)
		}
		if got := h.storedMetadata("job_state", "job_id", lid); !maps.Equal(got, meta) {
			t.Errorf("job_state after the backfill: metadata %v, want %v", got, meta)
		}

		hlcOnly := h.newNode("node-c", base+2000, modes[3])
		hid := hlcOnly.enqueue(withMeta("new")).JobID
		if k, err := hlcOnly.q.RollbackDrain(h.ctx); err != nil || k != 1 {
			t.Fatalf("RollbackDrain = %d, %v; want 1", k, err)
		}
		if got := h.storedMetadata("jobs", "id", hid); !maps.Equal(got, meta) {
			t.Errorf("legacy row after the drain: metadata %v, want %v", got, meta)
		}
	})
}
