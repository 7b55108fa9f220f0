package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/queue"
)

// UniqueOpts say what makes two inserts the same job. The zero value is
// ordo's default: a job is its tenant, partition, kind and payload, in any
// state, for ever (the job id is derived from them), so inserting the same
// args again finds the first job, even long after it ran.
//
// The options are mapped onto the job's idempotency key (docs/queue.md):
// job ids stay deterministic, the chain spec does not change, and two
// nodes inserting the same unique job at once still make one job. Jobs are
// always unique within their tenant, partition and kind, which are part of
// every job id.
type UniqueOpts struct {
	// ByFields: only these top-level fields of the args decide; jobs whose
	// args differ in other fields are the same job (the first one's args
	// stand). A field the args lack counts as absent. Empty: every field.
	ByFields []string
	// ByPeriod: inserts in the same period (a multiple of ByPeriod since
	// the Unix epoch, on the queue's clock) are one job; an insert in a
	// later period is a new job.
	ByPeriod time.Duration
	// ByState: an insert is the earlier job only while that job is in one
	// of these states; once it has left them (finished, say), the insert
	// is a new job, so a job may run again after the earlier one ran. A
	// job whose state retention pruned is in StatusPruned. Empty: every
	// state. ByState reads the queue before it writes, so it cannot be used
	// inside a caller's transaction (InsertTx).
	ByState []queue.Status
	// None: not unique at all; every insert is a new job.
	None bool
}

// IsZero reports whether u is the default.
func (u UniqueOpts) IsZero() bool {
	return len(u.ByFields) == 0 && u.ByPeriod == 0 && len(u.ByState) == 0 && !u.None
}

// maxUniqueGenerations bounds how many times one ByState job may be
// inserted again (each finished generation makes room for the next).
const maxUniqueGenerations = 1 << 30

// errUniqueInTx refuses ByState in InsertTx.
var errUniqueInTx = errors.New("worker: UniqueOpts.ByState reads the queue before the insert and cannot run inside the caller's transaction; use Insert")

// applyUnique sets j's idempotency key from u, at now; get reads a job
// (nil inside a caller's transaction).
func applyUnique(ctx context.Context, j *queue.Job, u UniqueOpts, now time.Time, get func(context.Context, uuid.UUID) (queue.JobInfo, error)) error {
	if u.IsZero() {
		return nil
	}
	if u.None {
		if len(u.ByFields) > 0 || u.ByPeriod != 0 || len(u.ByState) > 0 {
			return errors.New("worker: UniqueOpts.None excludes the other options")
		}
		j.IdempotencyKey, j.KeyDerived = "none:"+uuid.NewString(), true
		return nil
	}
	if u.ByPeriod < 0 {
		return fmt.Errorf("worker: UniqueOpts.ByPeriod %v: want a positive period", u.ByPeriod)
	}
	for _, s := range u.ByState {
		if !s.Valid() && s != queue.StatusPruned {
			return fmt.Errorf("worker: UniqueOpts.ByState: unknown state %q", s)
		}
	}
	// The identity: the caller's key, else the chosen fields, else the
	// payload.
	base, derived := j.IdempotencyKey, j.IdempotencyKey == ""
	if derived {
		sum, err := uniqueHash(j.Payload, u.ByFields)
		if err != nil {
			return err
		}
		base = "u:" + sum
	}
	if u.ByPeriod > 0 {
		period := now.UnixNano() / int64(u.ByPeriod)
		if now.UnixNano() < 0 && now.UnixNano()%int64(u.ByPeriod) != 0 {
			period--
		}
		base += ":p" + strconv.FormatInt(period*int64(u.ByPeriod)/int64(time.Millisecond), 10)
	}
	j.IdempotencyKey, j.KeyDerived = base, derived
	if len(u.ByState) == 0 {
		return nil
	}
	if get == nil {
		return errUniqueInTx
	}
	gen, err := uniqueGeneration(ctx, *j, base, u.ByState, get)
	if err != nil {
		return err
	}
	j.IdempotencyKey = base + ":g" + strconv.Itoa(gen)
	return nil
}

// uniqueHash is the SHA-256 of the canonical JSON of payload's fields
// (all of them when fields is empty), in hex.
func uniqueHash(payload []byte, fields []string) (string, error) {
	if len(fields) == 0 {
		h, err := chain.PayloadHash(payload)
		if err != nil {
			return "", err
		}
		return h.String(), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(payload, &obj); err != nil {
		return "", fmt.Errorf("worker: UniqueOpts.ByFields needs args that marshal to a JSON object: %w", err)
	}
	picked := map[string]json.RawMessage{}
	for _, f := range slices.Sorted(slices.Values(fields)) {
		if v, ok := obj[f]; ok {
			picked[f] = v
		}
	}
	b, err := json.Marshal(picked)
	if err != nil {
		return "", err
	}
	canon, err := chain.Canonicalize(b)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// uniqueGeneration finds the generation of base to insert: the latest one
// if its job is in one of states (the insert is that job), else the next.
// Generations are made in order and never removed (a pruned job still
// reads, from the chain), so which exist is a prefix 0..n-1, found in
// O(log n) reads. Two inserters racing find the same generation, and
// their jobs, having one id, are one job.
func uniqueGeneration(ctx context.Context, j queue.Job, base string, states []queue.Status, get func(context.Context, uuid.UUID) (queue.JobInfo, error)) (int, error) {
	read := func(gen int) (queue.JobInfo, bool, error) {
		id, err := chain.JobID(j.TenantID, j.PartitionKey, j.Kind, base+":g"+strconv.Itoa(gen), chain.Hash{})
		if err != nil {
			return queue.JobInfo{}, false, err
		}
		info, err := get(ctx, id)
		if errors.Is(err, queue.ErrJobNotFound) {
			return queue.JobInfo{}, false, nil
		}
		return info, err == nil, err
	}
	_, ok, err := read(0)
	if err != nil || !ok {
		return 0, err
	}
	lo, hi := 0, 1 // lo exists; hi is probed
	for {
		_, ok, err := read(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if hi >= maxUniqueGenerations {
			return 0, fmt.Errorf("worker: unique job %s inserted more than %d times", base, maxUniqueGenerations)
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // lo exists, hi does not
		mid := lo + (hi-lo)/2
		_, ok, err := read(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	latest, _, err := read(lo)
	if err != nil {
		return 0, err
	}
	if slices.Contains(states, latest.Status) {
		return lo, nil
	}
	return lo + 1, nil
}
