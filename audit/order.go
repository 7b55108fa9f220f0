package audit

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// The order check (the guide's "verify job processing order matches HLC
// order", `ordo verify --order`) compares when jobs were first started
// (job_state.started_at, recorded since migration 012) with their t_hlc
// order.
//
// A job is inverted when it was first started strictly before a job that
// comes earlier in t_hlc order within the same scope was: within its
// partition when the partition is strict (dequeued with StrictPartitions,
// which runs a partition's jobs one at a time in chain order, so an
// inversion there is a fault), within its queue (tenant and kind)
// elsewhere (where parallel workers, run_at, retries and priorities make
// some inversions normal, so their share is reported, not judged). Jobs
// first started at the same instant (one dequeue batch) are not
// inverted. Jobs never started, or whose state retention has deleted,
// take no part.

// OrderCheck compares first starts with t_hlc order for one tenant.
type OrderCheck struct {
	Store driver.AuditStore
	// Strict reports whether a partition of the tenant is dequeued with
	// strict partitions; nil: none is.
	Strict func(partition string) bool
	// MaxExamples bounds the inversions listed per strict partition and
	// per queue (default 10); all are counted.
	MaxExamples int
}

// Inversion is a job first started before a job earlier in t_hlc order.
type Inversion struct {
	JobID     uuid.UUID `json:"job_id"`
	Partition string    `json:"partition_key"`
	Kind      string    `json:"kind"`
	THLC      string    `json:"t_hlc"`
	StartedAt time.Time `json:"started_at"`
	// Earlier is the job before it in t_hlc order that started latest.
	EarlierJobID     uuid.UUID `json:"earlier_job_id"`
	EarlierTHLC      string    `json:"earlier_t_hlc"`
	EarlierStartedAt time.Time `json:"earlier_started_at"`
}

func (i Inversion) String() string {
	return fmt.Sprintf("job %s (partition %q, kind %s, t_hlc %s) started %s, before job %s (t_hlc %s) started %s",
		i.JobID, i.Partition, i.Kind, i.THLC, i.StartedAt.UTC().Format(time.RFC3339Nano),
		i.EarlierJobID, i.EarlierTHLC, i.EarlierStartedAt.UTC().Format(time.RFC3339Nano))
}

// OrderScope is the tally of one strict partition or one queue.
type OrderScope struct {
	// Partition is set for a strict partition, Kind for a queue.
	Partition  string      `json:"partition_key,omitempty"`
	Kind       string      `json:"kind,omitempty"`
	Strict     bool        `json:"strict"`
	Jobs       int64       `json:"jobs"`
	Inversions int64       `json:"inversions"`
	Share      float64     `json:"share"` // Inversions / Jobs
	Examples   []Inversion `json:"examples"`
}

// OrderResult is the verdict on one tenant.
type OrderResult struct {
	TenantID string `json:"tenant_id"`
	Jobs     int64  `json:"jobs"` // started jobs compared
	// StrictPartitions are the strict partitions that have started jobs,
	// by partition key; Queues the queues of the other jobs, by kind.
	StrictPartitions []*OrderScope `json:"strict_partitions"`
	Queues           []*OrderScope `json:"queues"`
	StrictInversions int64         `json:"strict_inversions"`
	// Valid is true when no strict partition has an inversion.
	Valid bool `json:"valid"`
}

type orderState struct {
	scope   *OrderScope
	latest  time.Time // the latest first start so far in t_hlc order
	job     uuid.UUID // whose it is
	thlc    string
	started bool
}

// Check streams the tenant's started jobs in t_hlc order once, keeping
// one running maximum per strict partition and per queue.
func (o *OrderCheck) Check(ctx context.Context, tenant string) (*OrderResult, error) {
	if err := chain.ValidateTenantID(tenant); err != nil {
		return nil, err
	}
	examples := o.MaxExamples
	if examples <= 0 {
		examples = 10
	}
	res := &OrderResult{TenantID: tenant, StrictPartitions: []*OrderScope{}, Queues: []*OrderScope{}}
	partitions, queues := map[string]*orderState{}, map[string]*orderState{}
	strict := map[string]bool{}
	err := o.Store.StartedJobs(ctx, tenant, func(j *driver.StartedJob) error {
		res.Jobs++
		isStrict, known := strict[j.PartitionKey]
		if !known {
			isStrict = o.Strict != nil && o.Strict(j.PartitionKey)
			strict[j.PartitionKey] = isStrict
		}
		var st *orderState
		if isStrict {
			if st = partitions[j.PartitionKey]; st == nil {
				st = &orderState{scope: &OrderScope{Partition: j.PartitionKey, Strict: true, Examples: []Inversion{}}}
				partitions[j.PartitionKey] = st
			}
		} else {
			if st = queues[j.Kind]; st == nil {
				st = &orderState{scope: &OrderScope{Kind: j.Kind, Examples: []Inversion{}}}
				queues[j.Kind] = st
			}
		}
		sc := st.scope
		sc.Jobs++
		switch {
		case st.started && j.StartedAt.Before(st.latest):
			sc.Inversions++
			if len(sc.Examples) < examples {
				sc.Examples = append(sc.Examples, Inversion{JobID: j.JobID, Partition: j.PartitionKey, Kind: j.Kind, THLC: j.THLC, StartedAt: j.StartedAt,
					EarlierJobID: st.job, EarlierTHLC: st.thlc, EarlierStartedAt: st.latest})
			}
		case !st.started || j.StartedAt.After(st.latest):
			st.started, st.latest, st.job, st.thlc = true, j.StartedAt, j.JobID, j.THLC
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, st := range partitions {
		res.StrictPartitions = append(res.StrictPartitions, st.scope)
		res.StrictInversions += st.scope.Inversions
	}
	for _, st := range queues {
		res.Queues = append(res.Queues, st.scope)
	}
	for _, scopes := range [][]*OrderScope{res.StrictPartitions, res.Queues} {
		for _, sc := range scopes {
			sc.Share = float64(sc.Inversions) / float64(sc.Jobs)
		}
	}
	sort.Slice(res.StrictPartitions, func(i, j int) bool { return res.StrictPartitions[i].Partition < res.StrictPartitions[j].Partition })
	sort.Slice(res.Queues, func(i, j int) bool { return res.Queues[i].Kind < res.Queues[j].Kind })
	res.Valid = res.StrictInversions == 0
	return res, nil
}
