package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/listquery"
	"github.com/ordo-sched/ordo/internal/strictjson"
	"github.com/ordo-sched/ordo/queue"
)

// jobRequest is one job to enqueue.
type jobRequest struct {
	Kind           string          `json:"kind"`
	Partition      string          `json:"partition"`
	Payload        json.RawMessage `json:"payload"`
	Priority       int             `json:"priority"`
	RunAt          string          `json:"run_at"` // RFC 3339; empty for now
	IdempotencyKey string          `json:"idempotency_key"`
	MaxAttempts    int             `json:"max_attempts"`
}

// enqueueResult is what an enqueue returns per job.
type enqueueResult struct {
	JobID        uuid.UUID `json:"job_id"`
	Tenant       string    `json:"tenant"`
	THLC         *string   `json:"t_hlc"` // null when written to the legacy table only
	Link         *string   `json:"link"`
	Deduplicated bool      `json:"deduplicated"`
	Mode         string    `json:"mode"`
}

// toJob validates a request before anything is written; every error names
// its field (prefixed with prefix, e.g. "jobs[3].").
func (s *Service) toJob(tenant string, jr jobRequest, prefix string) (queue.Job, *apiError) {
	cfg := s.cfg.Load()
	if err := chain.ValidateKind(jr.Kind); err != nil {
		return queue.Job{}, badField(prefix+"kind", "%v", err)
	}
	if err := chain.ValidatePartitionKey(jr.Partition); err != nil {
		return queue.Job{}, badField(prefix+"partition", "%v", err)
	}
	if err := chain.ValidateIdempotencyKey(jr.IdempotencyKey); err != nil {
		return queue.Job{}, badField(prefix+"idempotency_key", "%v", err)
	}
	payload := []byte(jr.Payload)
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if max := cfg.Ordo.Http.MaxPayloadBytes; len(payload) > max {
		return queue.Job{}, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: prefix + "payload",
			Msg: fmt.Sprintf("payload is %d bytes, at most %d allowed (Ordo:Http:MaxPayloadBytes)", len(payload), max)}
	}
	if _, err := chain.Canonicalize(payload); err != nil {
		return queue.Job{}, badField(prefix+"payload", "%v", err)
	}
	if jr.Priority < math.MinInt16 || jr.Priority > math.MaxInt16 {
		return queue.Job{}, badField(prefix+"priority", "priority %d, want -32768..32767", jr.Priority)
	}
	if jr.MaxAttempts < 0 || jr.MaxAttempts > 1000 {
		return queue.Job{}, badField(prefix+"max_attempts", "max_attempts %d, want 0 (default 25) to 1000", jr.MaxAttempts)
	}
	j := queue.Job{TenantID: tenant, PartitionKey: jr.Partition, Kind: jr.Kind, Payload: payload, Priority: jr.Priority,
		IdempotencyKey: jr.IdempotencyKey, MaxAttempts: jr.MaxAttempts}
	if jr.RunAt != "" {
		t, err := time.Parse(time.RFC3339Nano, jr.RunAt)
		if err != nil {
			return queue.Job{}, badField(prefix+"run_at", "run_at %q: want an RFC 3339 time such as 2026-01-08T09:00:00Z", jr.RunAt)
		}
		if t.After(queue.MaxRunAt) {
			return queue.Job{}, badField(prefix+"run_at", "run_at %q is %s in UTC, after the last time RFC 3339 can write (%s)",
				jr.RunAt, t.UTC().Format("2006-01-02T15:04:05.999Z07:00"), queue.MaxRunAt.Format(time.RFC3339Nano))
		}
		j.RunAt = t
	}
	if jr.Kind == KindHTTP {
		if _, _, ferr := s.checkHTTPPayload(payload); ferr != nil {
			return queue.Job{}, ferr.api(prefix)
		}
	}
	return j, nil
}

// enqueueError maps the queue's refusals.
func (s *Service) enqueueError(w http.ResponseWriter, r *http.Request, err error, prefix string) {
	switch {
	case errors.Is(err, chain.ErrInvalidPayload):
		writeError(w, badField(prefix+"payload", "%v", err))
	case errors.Is(err, queue.ErrInvalidJob):
		field := "job"
		for _, f := range []string{"tenant_id", "partition_key", "kind", "idempotency_key", "payload", "max_attempts", "priority"} {
			if strings.Contains(err.Error(), f) {
				field = map[string]string{"tenant_id": "tenant", "partition_key": "partition"}[f]
				if field == "" {
					field = f
				}
				break
			}
		}
		writeError(w, badField(prefix+field, "%v", err))
	case errors.Is(err, hlc.ErrClockDrift):
		s.fail(w, r, err, err.Error()) // says how far ahead, which the producer may fix
	case errors.Is(err, queue.ErrIdempotencyConflict):
		e := statusError(err, err.Error())
		e.Field = prefix + "idempotency_key"
		writeError(w, e)
	default:
		s.internal(w, r, err)
	}
}

func (s *Service) result(tenant string, res queue.EnqueueResult) enqueueResult {
	out := enqueueResult{JobID: res.JobID, Tenant: tenant, Deduplicated: res.Deduplicated, Mode: s.q.Mode().String()}
	if res.THLC != "" {
		link := res.Link.String()
		out.THLC, out.Link = &res.THLC, &link
	}
	return out
}

// POST /v1/tenants/{tenant}/jobs
func (s *Service) enqueueOne(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var jr jobRequest
	if e := readJSON(w, r, s.bodyLimit(), &jr, false); e != nil {
		writeError(w, e)
		return
	}
	// The Idempotency-Key header, as HTTP APIs commonly take it, is the
	// job's idempotency_key; given both ways, they must agree.
	if hk, ok := r.Header[http.CanonicalHeaderKey("Idempotency-Key")]; ok {
		switch {
		case len(hk) != 1:
			writeError(w, badField("Idempotency-Key", "the Idempotency-Key header is given %d times; give it once", len(hk)))
			return
		case jr.IdempotencyKey != "" && jr.IdempotencyKey != hk[0]:
			writeError(w, badField("idempotency_key", "idempotency_key %q and the Idempotency-Key header %q differ", jr.IdempotencyKey, hk[0]))
			return
		}
		jr.IdempotencyKey = hk[0]
	}
	j, e := s.toJob(tenant, jr, "")
	if e != nil {
		writeError(w, e)
		return
	}
	res, err := s.q.Enqueue(r.Context(), j)
	if err != nil {
		s.enqueueError(w, r, err, "")
		return
	}
	status := http.StatusCreated
	if res.Deduplicated {
		status = http.StatusOK
	}
	writeJSON(w, status, s.result(tenant, res))
}

func (s *Service) bodyLimit() int64 { return int64(s.cfg.Load().Ordo.Http.MaxBodyBytes) }

// POST /v1/tenants/{tenant}/jobs/batch
func (s *Service) enqueueBatch(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	// A batch costs memory for its decoded jobs while it is handled, so
	// only so many are handled at once; the others are told to retry.
	select {
	case s.batchSlots <- struct{}{}:
		defer func() { <-s.batchSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: "too_many_requests",
			Msg: fmt.Sprintf("%d batch enqueues are being handled (Ordo:Http:MaxConcurrentBatches); retry", cap(s.batchSlots))})
		return
	}
	var req struct {
		Jobs []jobRequest `json:"jobs"`
	}
	if r.Header.Get("Idempotency-Key") != "" {
		writeError(w, badField("Idempotency-Key", "a batch takes an idempotency_key per job, not the Idempotency-Key header"))
		return
	}
	maxJobs := s.cfg.Load().Ordo.Http.MaxBatchJobs
	if e := readJSON(w, r, s.bodyLimit(), &req, false, strictjson.Limit{Path: "jobs", Max: maxJobs}); e != nil {
		if e.Code == "too_many" {
			e = badField("jobs", "more than %d jobs, want 1..%d (Ordo:Http:MaxBatchJobs)", maxJobs, maxJobs)
		}
		writeError(w, e)
		return
	}
	if len(req.Jobs) == 0 || len(req.Jobs) > maxJobs {
		writeError(w, badField("jobs", "%d jobs, want 1..%d (Ordo:Http:MaxBatchJobs)", len(req.Jobs), maxJobs))
		return
	}
	jobs := make([]queue.Job, len(req.Jobs))
	for i, jr := range req.Jobs {
		j, e := s.toJob(tenant, jr, fmt.Sprintf("jobs[%d].", i))
		if e != nil {
			writeError(w, e)
			return
		}
		jobs[i] = j
	}
	res, err := s.q.EnqueueMany(r.Context(), jobs)
	if err != nil {
		prefix := ""
		var n int
		if _, scanErr := fmt.Sscanf(err.Error(), "job %d:", &n); scanErr == nil {
			prefix = fmt.Sprintf("jobs[%d].", n)
		}
		s.enqueueError(w, r, err, prefix)
		return
	}
	out := make([]enqueueResult, len(res))
	status := http.StatusOK
	for i, x := range res {
		out[i] = s.result(tenant, x)
		if !x.Deduplicated {
			status = http.StatusCreated
		}
	}
	writeJSON(w, status, map[string]any{"jobs": out})
}

// jobJSON is a job as the API shows it. The lease token is never shown
// here: only the dequeue that granted it returns it.
type jobJSON struct {
	JobID          uuid.UUID       `json:"job_id"`
	Tenant         string          `json:"tenant"`
	Partition      string          `json:"partition"`
	Kind           string          `json:"kind"`
	Status         queue.Status    `json:"status"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"max_attempts"`
	Priority       int             `json:"priority"`
	RunAt          time.Time       `json:"run_at"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at,omitzero"` // none for a pruned job
	LeaseOwner     string          `json:"lease_owner,omitempty"`
	LeaseExpiresAt *time.Time      `json:"lease_expires_at,omitempty"`
	LastError      string          `json:"last_error,omitempty"`
	PayloadHash    string          `json:"payload_hash"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	THLC           *string         `json:"t_hlc"`
	InLegacy       bool            `json:"in_legacy"`
	InHLC          bool            `json:"in_hlc"`
	Chain          *chainJSON      `json:"chain,omitempty"`
	// AttemptErrors is the job's attempt history, oldest first: shown
	// for one job (GET .../jobs/{id}, `ordo jobs show`), never in lists,
	// whose queries do not read it.
	AttemptErrors *[]attemptErrorJSON `json:"attempt_errors,omitempty"`
	// Metadata is what the job was enqueued with outside its payload (a
	// trace context, for one): shown for one job only, like AttemptErrors.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// attemptErrorJSON is one failed attempt of a job's history.
type attemptErrorJSON struct {
	At      time.Time `json:"at"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	Worker  string    `json:"worker"`
}

// chainJSON is a job's entry in its chain.
type chainJSON struct {
	THLC        string  `json:"t_hlc"`
	Seq         int64   `json:"seq_bigint"`
	Pos         int64   `json:"chain_pos"`
	PayloadHash string  `json:"payload_hash"`
	PrevLink    *string `json:"prev_link"` // null for the first entry of a chain
	Link        string  `json:"link"`
}

// JobView renders a job as the API and `ordo jobs list` list it.
func JobView(j queue.JobInfo) any { return toJobJSON(j) }

// JobDetailView renders one job as the API and `ordo jobs show` show it:
// a listed job with its attempt history.
func JobDetailView(j queue.JobInfo) any { return toJobDetailJSON(j) }

func toJobDetailJSON(j queue.JobInfo) jobJSON {
	out := toJobJSON(j)
	hist := make([]attemptErrorJSON, len(j.AttemptErrors))
	for i, a := range j.AttemptErrors {
		hist[i] = attemptErrorJSON{At: a.At.UTC(), Attempt: a.Attempt, Error: a.Error, Worker: a.Worker}
	}
	out.AttemptErrors = &hist
	out.Metadata = j.Metadata
	return out
}

func toJobJSON(j queue.JobInfo) jobJSON {
	out := jobJSON{
		JobID: j.JobID, Tenant: j.TenantID, Partition: j.PartitionKey, Kind: j.Kind, Status: j.Status,
		Attempts: j.Attempts, MaxAttempts: j.MaxAttempts, Priority: j.Priority,
		RunAt: j.RunAt.UTC(), CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(),
		LeaseOwner: j.LeaseOwner, LastError: j.LastError, PayloadHash: j.PayloadHash.String(),
		InLegacy: j.InLegacy, InHLC: j.InHLC,
	}
	if len(j.Payload) > 0 {
		out.Payload = json.RawMessage(j.Payload)
	}
	if !j.LeaseExpiresAt.IsZero() {
		t := j.LeaseExpiresAt.UTC()
		out.LeaseExpiresAt = &t
	}
	if e := j.Chain; e != nil {
		c := &chainJSON{THLC: e.THLC, Seq: e.Seq, Pos: e.Pos, PayloadHash: e.PayloadHash.String(), Link: e.Link.String()}
		if !e.PrevLinkNull {
			p := e.PrevLink.String()
			c.PrevLink = &p
		}
		out.Chain, out.THLC = c, &c.THLC
	}
	return out
}

// GET /v1/tenants/{tenant}/jobs?state=&kind=&partition=&cursor=&limit=&payload=&payload_contains=
func (s *Service) listJobs(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	q := r.URL.Query()
	p, e := listParams(tenant, q)
	if e != nil {
		writeError(w, e)
		return
	}
	// Totals are asked for: counting finished jobs reads every row of the
	// tenant, which a worker paging through jobs should not pay for.
	var withTotals bool
	if t := q.Get("totals"); t != "" {
		b, err := strconv.ParseBool(t)
		if err != nil {
			writeError(w, badField("totals", "totals %q, want true or false", t))
			return
		}
		withTotals = b
	}
	jobs, next, err := s.q.Backend().ListJobs(r.Context(), p)
	if err != nil {
		if errors.Is(err, driver.ErrInvalidList) {
			writeError(w, badField("query", "%v", err))
			return
		}
		s.internal(w, r, err)
		return
	}
	out := make([]jobJSON, len(jobs))
	for i, j := range jobs {
		out[i] = toJobJSON(j)
	}
	answer := map[string]any{"jobs": out, "next_cursor": next}
	if withTotals {
		totals, err := s.countByStatus(r.Context(), tenant)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		answer["totals"] = totals
	}
	writeJSON(w, http.StatusOK, answer)
}

// listParams reads and checks the list query; errors name the parameter.
func listParams(tenant string, v url.Values) (driver.ListParams, *apiError) {
	p, e := listquery.Parse(tenant, v, "totals")
	switch {
	case e == nil:
		return p, nil
	case e.Unknown:
		return p, &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: e.Key, Msg: e.Msg}
	}
	return p, badField(e.Key, "%s", e.Msg)
}

// tenantJob reads the job named in the path, if it belongs to tenant;
// otherwise it answers the request (a bad id, not found, or an internal
// error) and reports false. Another tenant's job is not found, exactly
// like one that does not exist.
func (s *Service) tenantJob(w http.ResponseWriter, r *http.Request, tenant string) (queue.JobInfo, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		writeError(w, badField("id", "job id %q: want a UUID", r.PathValue("id")))
		return queue.JobInfo{}, false
	}
	info, err := s.q.GetInTenant(r.Context(), tenant, id)
	switch {
	case errors.Is(err, queue.ErrJobNotFound):
		writeError(w, errJobNotFound)
	case err != nil:
		s.internal(w, r, err)
	default:
		return info, true
	}
	return queue.JobInfo{}, false
}

// GET /v1/tenants/{tenant}/jobs/{id}
func (s *Service) showJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	if info, ok := s.tenantJob(w, r, tenant); ok {
		writeJSON(w, http.StatusOK, toJobDetailJSON(info))
	}
}

// POST /v1/tenants/{tenant}/jobs/{id}/cancel
func (s *Service) cancelJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var req struct {
		Reason string `json:"reason"`
	}
	if e := readJSON(w, r, s.bodyLimit(), &req, true); e != nil {
		writeError(w, e)
		return
	}
	if e := checkText("reason", req.Reason, 10_000); e != nil {
		writeError(w, e)
		return
	}
	info, ok := s.tenantJob(w, r, tenant)
	if !ok {
		return
	}
	switch err := s.q.CancelInTenant(r.Context(), tenant, info.JobID, req.Reason); {
	case errors.Is(err, queue.ErrJobFinished):
		s.fail(w, r, err, fmt.Sprintf("the job is already %s", info.Status))
	case errors.Is(err, queue.ErrJobNotFound):
		s.fail(w, r, err, errJobNotFound.Msg)
	case err != nil:
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"job_id": info.JobID, "status": queue.StatusCancelled})
	}
}

// leaseRequest names a held lease.
type leaseRequest struct {
	LeaseToken string `json:"lease_token"`
}

func (lr leaseRequest) token() (uuid.UUID, *apiError) {
	if lr.LeaseToken == "" {
		return uuid.Nil, badField("lease_token", "lease_token is required: the token the dequeue returned")
	}
	t, err := uuid.Parse(lr.LeaseToken)
	if err != nil || t == uuid.Nil {
		return uuid.Nil, badField("lease_token", "lease_token %q: want the UUID the dequeue returned", lr.LeaseToken)
	}
	return t, nil
}

// longPoll dequeues; when nothing is ready, it waits up to wait for a
// wakeup (an enqueue here, a NOTIFY from another node), looking again
// every longPollRecheck, and answers empty when the wait is over, the
// client has gone, or the service is stopping.
func (s *Service) longPoll(ctx context.Context, opts queue.DequeueOptions, wait time.Duration) ([]queue.Lease, error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	recheck := time.NewTicker(longPollRecheck)
	defer recheck.Stop()
	for {
		woke := s.wake.current()
		leases, err := s.q.Dequeue(ctx, opts)
		if err != nil || len(leases) > 0 || deadline == nil {
			return leases, err
		}
		if s.opts.OnLongPollWait != nil {
			s.opts.OnLongPollWait()
		}
		select {
		case <-woke:
		case <-recheck.C:
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, nil // the client is gone; its answer has no reader
		case <-s.wake.stopped:
			return nil, nil
		}
	}
}

// POST /v1/tenants/{tenant}/jobs/{id}/retry puts a failed or cancelled
// job back in the queue, due now, with its attempts reset.
func (s *Service) retryJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	if e := readJSON(w, r, s.bodyLimit(), &struct{}{}, true); e != nil {
		writeError(w, e)
		return
	}
	info, ok := s.tenantJob(w, r, tenant)
	if !ok {
		return
	}
	switch err := s.q.Retry(r.Context(), info.JobID); {
	case errors.Is(err, queue.ErrNotRetryable):
		s.fail(w, r, err, fmt.Sprintf("the job is %s; only a failed or cancelled job can be retried", info.Status))
	case err != nil:
		s.fail(w, r, err, "")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"job_id": info.JobID, "status": queue.StatusPending})
	}
}

// DELETE /v1/tenants/{tenant}/jobs/{id} deletes a finished job's state,
// as retention does; the chain keeps its entry, so the job reads as
// pruned afterwards, and deleting it again answers the same.
func (s *Service) deleteJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	info, ok := s.tenantJob(w, r, tenant)
	if !ok {
		return
	}
	if info.Status == queue.StatusPruned {
		writeJSON(w, http.StatusOK, map[string]any{"job_id": info.JobID, "status": queue.StatusPruned})
		return
	}
	switch err := s.q.DeleteJob(r.Context(), info.JobID); {
	case errors.Is(err, queue.ErrJobNotFinished):
		s.fail(w, r, err, fmt.Sprintf("the job is %s; only a succeeded, failed or cancelled job can be deleted (cancel it first)", info.Status))
	case errors.Is(err, queue.ErrJobNotFound) && info.InHLC:
		// Pruned or deleted meanwhile: what was asked is done.
		writeJSON(w, http.StatusOK, map[string]any{"job_id": info.JobID, "status": queue.StatusPruned})
	case err != nil:
		s.fail(w, r, err, "")
	default:
		status := queue.StatusPruned
		if !info.InHLC {
			status = "deleted" // a legacy-only job has no log entry to read it from
		}
		writeJSON(w, http.StatusOK, map[string]any{"job_id": info.JobID, "status": status})
	}
}

// leaseLost says why a lease no longer holds, from the job's state now:
// a client that retries a completion whose first try succeeded must learn
// that the job is done, not that another worker took it.
func (s *Service) leaseLost(r *http.Request, tenant string, id uuid.UUID, err error) *apiError {
	e := statusError(err, "the lease is gone; nothing was changed")
	info, gerr := s.q.GetInTenant(r.Context(), tenant, id)
	switch {
	case gerr != nil:
	case info.Status.Finished() || info.Status == queue.StatusPruned:
		e.Code = "job_finished"
		e.Msg = fmt.Sprintf("the job is already %s (a retried request whose first try went through finds it so); nothing was changed", info.Status)
	case info.Status == queue.StatusRunning:
		e.Msg = "the job runs under another lease (yours expired and it was handed out again, or the token is not this job's); nothing was changed"
	default:
		e.Msg = fmt.Sprintf("the lease expired and the job is %s, waiting to run again; nothing was changed", info.Status)
	}
	return e
}

// leaseOp reads a lease request (extra decodes into the same body) and
// the job, and runs op with the lease. When the lease is gone because
// this very lease already ended the job (a client retrying a request
// whose answer it lost), again answers as the first request did, from
// the job's state now; again returns false when the state is not what
// op leaves behind.
func (s *Service) leaseOp(w http.ResponseWriter, r *http.Request, tenant string, body any, token func() (uuid.UUID, *apiError),
	op func(l queue.Lease) (any, error), again func(info queue.JobInfo) (any, bool)) {
	if e := readJSON(w, r, s.bodyLimit(), body, false); e != nil {
		writeError(w, e)
		return
	}
	tok, e := token()
	if e != nil {
		writeError(w, e)
		return
	}
	info, ok := s.tenantJob(w, r, tenant)
	if !ok {
		return
	}
	l := queue.Lease{JobID: info.JobID, TenantID: info.TenantID, Token: tok, Attempt: info.Attempts, MaxAttempts: info.MaxAttempts}
	out, err := op(l)
	if errors.Is(err, queue.ErrLeaseLost) && again != nil {
		if now, gerr := s.q.GetInTenant(r.Context(), tenant, info.JobID); gerr == nil && now.LeaseToken == tok && tok != uuid.Nil {
			if out, ok := again(now); ok {
				writeJSON(w, http.StatusOK, out)
				return
			}
		}
	}
	switch {
	case errors.Is(err, queue.ErrLeaseLost):
		writeError(w, s.leaseLost(r, tenant, info.JobID, err))
	case err != nil:
		var ae *apiError
		if errors.As(err, &ae) {
			writeError(w, ae)
			return
		}
		s.internal(w, r, err)
	default:
		writeJSON(w, http.StatusOK, out)
	}
}

// POST /v1/tenants/{tenant}/jobs/{id}/complete
func (s *Service) completeJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var req leaseRequest
	s.leaseOp(w, r, tenant, &req, func() (uuid.UUID, *apiError) { return req.token() }, func(l queue.Lease) (any, error) {
		if err := s.q.Complete(r.Context(), l); err != nil {
			return nil, err
		}
		return map[string]any{"job_id": l.JobID, "status": queue.StatusSucceeded}, nil
	}, func(info queue.JobInfo) (any, bool) {
		return map[string]any{"job_id": info.JobID, "status": queue.StatusSucceeded}, info.Status == queue.StatusSucceeded
	})
}

// failAnswer is what a fail answers: the job retried at runAt, or failed.
func failAnswer(id uuid.UUID, retried bool, runAt time.Time) map[string]any {
	out := map[string]any{"job_id": id, "retried": retried, "status": queue.StatusFailed}
	if retried {
		out["status"], out["run_at"] = queue.StatusScheduled, runAt.UTC()
	}
	return out
}

// POST /v1/tenants/{tenant}/jobs/{id}/fail
func (s *Service) failJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var req struct {
		leaseRequest
		Error             string   `json:"error"`
		Retry             *bool    `json:"retry"`               // default true: retry while attempts remain
		RetryAfterSeconds *float64 `json:"retry_after_seconds"` // instead of the backoff
	}
	s.leaseOp(w, r, tenant, &req, func() (uuid.UUID, *apiError) { return req.token() }, func(l queue.Lease) (any, error) {
		if e := checkText("error", req.Error, 10_000); e != nil {
			return nil, e
		}
		fo := queue.FailOptions{NoRetry: req.Retry != nil && !*req.Retry}
		if d := req.RetryAfterSeconds; d != nil {
			if *d < 0 || *d > 30*24*3600 {
				return nil, badField("retry_after_seconds", "retry_after_seconds %v, want 0..2592000", *d)
			}
			fo.Delay = time.Duration(*d * float64(time.Second))
		}
		msg := req.Error
		if msg == "" {
			msg = "failed (reported through the API)"
		}
		res, err := s.q.Fail(r.Context(), l, errors.New(msg), fo)
		if err != nil {
			return nil, err
		}
		return failAnswer(l.JobID, res.Retried, res.RunAt), nil
	}, func(info queue.JobInfo) (any, bool) {
		// Retried, the job waits (scheduled, or pending once due) with
		// the attempt it failed; not retried, it failed for good.
		switch info.Status {
		case queue.StatusFailed:
			return failAnswer(info.JobID, false, time.Time{}), true
		case queue.StatusScheduled, queue.StatusPending:
			return failAnswer(info.JobID, true, info.RunAt), true
		}
		return nil, false
	})
}

// POST /v1/tenants/{tenant}/jobs/{id}/extend
func (s *Service) extendJob(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var req struct {
		leaseRequest
		LeaseSeconds float64 `json:"lease_seconds"`
	}
	s.leaseOp(w, r, tenant, &req, func() (uuid.UUID, *apiError) { return req.token() }, func(l queue.Lease) (any, error) {
		if req.LeaseSeconds == 0 {
			req.LeaseSeconds = 30
		}
		if req.LeaseSeconds < 1 || req.LeaseSeconds > 86400 {
			return nil, badField("lease_seconds", "lease_seconds %v, want 1..86400", req.LeaseSeconds)
		}
		l, err := s.q.Extend(r.Context(), l, time.Duration(req.LeaseSeconds*float64(time.Second)))
		if err != nil {
			return nil, err
		}
		return map[string]any{"job_id": l.JobID, "lease_expires_at": l.ExpiresAt.UTC()}, nil
	}, nil) // an extension of an ended lease has nothing to repeat
}

// leaseJSON is a dequeued job with its lease.
type leaseJSON struct {
	JobID          uuid.UUID       `json:"job_id"`
	Tenant         string          `json:"tenant"`
	Partition      string          `json:"partition"`
	Kind           string          `json:"kind"`
	Payload        json.RawMessage `json:"payload"`
	Priority       int             `json:"priority"`
	THLC           *string         `json:"t_hlc"`
	Attempt        int             `json:"attempt"`
	MaxAttempts    int             `json:"max_attempts"`
	RunAt          time.Time       `json:"run_at"`
	CreatedAt      time.Time       `json:"created_at"`
	LeaseOwner     string          `json:"lease_owner"`
	LeaseToken     uuid.UUID       `json:"lease_token"`
	LeaseExpiresAt time.Time       `json:"lease_expires_at"`
}

// POST /v1/tenants/{tenant}/dequeue
func (s *Service) dequeue(w http.ResponseWriter, r *http.Request, tenant string, p principal) {
	var req struct {
		Limit            int      `json:"limit"`
		LeaseSeconds     float64  `json:"lease_seconds"`
		Kinds            []string `json:"kinds"`
		Owner            string   `json:"owner"`
		StrictPartitions bool     `json:"strict_partitions"`
		WaitSeconds      float64  `json:"wait_seconds"` // long poll: wait this long for a job when none is ready
	}
	if e := readJSON(w, r, s.bodyLimit(), &req, true); e != nil {
		writeError(w, e)
		return
	}
	maxN := s.cfg.Load().Ordo.Http.MaxDequeue
	if req.Limit == 0 {
		req.Limit = 1
	}
	if req.Limit < 1 || req.Limit > maxN {
		writeError(w, badField("limit", "limit %d, want 1..%d (Ordo:Http:MaxDequeue)", req.Limit, maxN))
		return
	}
	if req.LeaseSeconds == 0 {
		req.LeaseSeconds = 30
	}
	if req.LeaseSeconds < 1 || req.LeaseSeconds > 86400 {
		writeError(w, badField("lease_seconds", "lease_seconds %v, want 1..86400", req.LeaseSeconds))
		return
	}
	for i, k := range req.Kinds {
		if err := chain.ValidateKind(k); err != nil {
			writeError(w, badField(fmt.Sprintf("kinds[%d]", i), "%v", err))
			return
		}
	}
	if e := checkText("owner", req.Owner, 200); e != nil {
		writeError(w, e)
		return
	}
	if req.WaitSeconds < 0 || req.WaitSeconds > MaxDequeueWait.Seconds() {
		writeError(w, badField("wait_seconds", "wait_seconds %v, want 0..%v", req.WaitSeconds, MaxDequeueWait.Seconds()))
		return
	}
	if req.Owner == "" {
		req.Owner = "api:" + p.name
	}
	opts := queue.DequeueOptions{
		Owner: req.Owner, Limit: req.Limit, LeaseFor: time.Duration(req.LeaseSeconds * float64(time.Second)),
		Kinds: req.Kinds, TenantID: tenant, StrictPartitions: req.StrictPartitions,
	}
	wait := min(time.Duration(req.WaitSeconds*float64(time.Second)), s.cfg.Load().Ordo.Http.WriteTimeout/2)
	leases, err := s.longPoll(r.Context(), opts, wait)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]leaseJSON, len(leases))
	for i, l := range leases {
		out[i] = leaseJSON{JobID: l.JobID, Tenant: l.TenantID, Partition: l.PartitionKey, Kind: l.Kind, Payload: json.RawMessage(l.Payload),
			Priority: l.Priority, Attempt: l.Attempt, MaxAttempts: l.MaxAttempts, RunAt: l.RunAt.UTC(), CreatedAt: l.CreatedAt.UTC(),
			LeaseOwner: l.Owner, LeaseToken: l.Token, LeaseExpiresAt: l.ExpiresAt.UTC()}
		if l.THLC != "" {
			t := l.THLC
			out[i].THLC = &t
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

// GET /v1/tenants/{tenant}/stats
func (s *Service) stats(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	byStatus, err := s.countByStatus(r.Context(), tenant)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant": tenant, "counts": byStatus, "mode": s.q.Mode().String()})
}

// countByStatus counts tenant's jobs in every state, zeros included.
func (s *Service) countByStatus(ctx context.Context, tenant string) (map[queue.Status]int64, error) {
	counts, err := s.q.Backend().CountByStatus(ctx, driver.CountParams{TenantID: tenant})
	if err != nil {
		return nil, err
	}
	byStatus := map[queue.Status]int64{}
	for _, st := range driver.AllStatuses {
		byStatus[st] = 0
	}
	for _, c := range counts {
		byStatus[c.Status] += c.Count
	}
	return byStatus, nil
}

// POST /v1/tenants/{tenant}/verify
func (s *Service) verify(w http.ResponseWriter, r *http.Request, tenant string, p principal) {
	var req struct {
		Partition *string `json:"partition"`
	}
	if e := readJSON(w, r, s.bodyLimit(), &req, true); e != nil {
		writeError(w, e)
		return
	}
	var parts []string
	if req.Partition != nil {
		if err := chain.ValidatePartitionKey(*req.Partition); err != nil {
			writeError(w, badField("partition", "%v", err))
			return
		}
		parts = []string{*req.Partition}
	}
	v := &audit.Verifier{Store: s.q.Backend().AuditStore(), Metrics: s.q.Metrics(), Key: s.audit}
	res, err := v.Verify(r.Context(), tenant, parts...)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if parts == nil { // the dashboard shows each tenant's latest whole verification
		s.recordVerification(r.Context(), tenant, res, "api:"+p.name)
	}
	writeJSON(w, http.StatusOK, res)
}

// jobProof returns the inclusion proof of one of the tenant's jobs against
// its chain's latest checkpoint, in the proof file format of docs/audit.md,
// to be checked offline with `ordo proof check`.
func (s *Service) jobProof(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	info, ok := s.tenantJob(w, r, tenant)
	if !ok {
		return
	}
	as := s.q.Backend().AuditStore()
	proof, err := audit.ProveInclusion(r.Context(), as, driver.JobRef{TenantID: tenant, JobID: info.JobID})
	switch {
	case errors.Is(err, audit.ErrNotCovered) || errors.Is(err, driver.ErrRecordNotFound):
		// Not yet covered by a checkpoint, or legacy-only: nothing to prove.
		writeError(w, &apiError{Status: http.StatusConflict, Code: "no_proof", Msg: err.Error()})
		return
	case err != nil:
		// A damaged tree or the store's failure: the server's fault, logged.
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, proof)
}

type checkpointJSON struct {
	PartitionKey string    `json:"partition_key"`
	Size         int64     `json:"size"`
	RootHash     string    `json:"root_hash"`
	KeyName      string    `json:"key_name"`
	Note         string    `json:"note"` // the signed note, as `ordo proof check --checkpoint` reads it
	CreatedAt    time.Time `json:"created_at"`
}

// checkpoints lists the latest signed checkpoint of each of the tenant's
// chains: what an auditor keeps to detect a later rewrite or truncation.
func (s *Service) checkpoints(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	as := s.q.Backend().AuditStore()
	keys, err := as.Chains(r.Context(), tenant)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := []checkpointJSON{}
	for _, k := range keys {
		cps, err := as.Checkpoints(r.Context(), k, 1)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		for _, cp := range cps {
			// What the note signs, not the columns beside it, which
			// nothing signs.
			if b, _, err := audit.OpenCheckpoint(cp.Note, nil); err == nil {
				cp.Size, cp.Root = b.Size, b.Root
			}
			// With the witnesses' cosignatures as extra signature lines.
			msg, err := audit.WithCosignatures(r.Context(), audit.CosignatureStoreOf(as), cp)
			if err != nil {
				s.internal(w, r, err)
				return
			}
			out = append(out, checkpointJSON{PartitionKey: k.PartitionKey, Size: cp.Size, RootHash: cp.Root.String(),
				KeyName: cp.KeyName, Note: string(msg), CreatedAt: cp.CreatedAt.UTC()})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkpoints": out})
}

type snapshotJSON struct {
	BatchID      uuid.UUID       `json:"batch_id"`
	PartitionKey string          `json:"partition_key"`
	SnapshotHLC  string          `json:"snapshot_hlc"`
	FromPos      int64           `json:"from_chain_pos"`
	ToPos        int64           `json:"to_chain_pos"`
	FromLink     string          `json:"from_chain_link"`
	ToLink       string          `json:"to_chain_link"`
	EntryCount   int64           `json:"entry_count"`
	MerkleRoot   string          `json:"merkle_root"`
	KeyID        string          `json:"key_id"`
	Envelope     json.RawMessage `json:"envelope"`
	CreatedAt    time.Time       `json:"created_at"`
}

// snapshots lists the tenant's signed batch snapshots, oldest first.
func (s *Service) snapshots(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	as := s.q.Backend().AuditStore()
	for k := range r.URL.Query() {
		if k != "limit" {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: "unknown_field", Field: k,
				Msg: fmt.Sprintf("unknown query parameter %q; known: limit", k)})
			return
		}
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, badField("limit", "want 1..1000, got %q", v))
			return
		}
		limit = n
	}
	snaps, err := as.Snapshots(r.Context(), driver.SnapshotFilter{TenantID: tenant, Limit: limit})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]snapshotJSON, 0, len(snaps))
	for i := range snaps {
		out = append(out, toSnapshotJSON(&snaps[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": out})
}

// createSnapshot signs a snapshot of a range of one of the tenant's chains
// on demand (the whole chain by default), like `ordo snapshot create`.
func (s *Service) createSnapshot(w http.ResponseWriter, r *http.Request, tenant string, _ principal) {
	var req struct {
		Partition string `json:"partition"`
		From      int64  `json:"from_chain_pos"`
		To        *int64 `json:"to_chain_pos"`
	}
	if e := readJSON(w, r, s.bodyLimit(), &req, true); e != nil {
		writeError(w, e)
		return
	}
	if err := chain.ValidatePartitionKey(req.Partition); err != nil {
		writeError(w, badField("partition", "%v", err))
		return
	}
	to := int64(-1)
	if req.To != nil {
		to = *req.To
	}
	if req.From < 0 || req.To != nil && to < req.From {
		writeError(w, badField("to_chain_pos", "want from_chain_pos <= to_chain_pos, both >= 0"))
		return
	}
	if s.signer == nil {
		writeError(w, &apiError{Status: http.StatusConflict, Code: "no_signing_key", Msg: "this service has no signing key (Ordo:Audit:SigningKeyFile)"})
		return
	}
	as := s.q.Backend().AuditStore()
	sn := &audit.Snapshotter{Store: as, Key: s.signer, Clock: s.q.Clock(), Metrics: s.q.Metrics(), Now: s.now}
	snap, err := sn.Create(r.Context(), chain.Key{TenantID: tenant, PartitionKey: req.Partition}, req.From, to)
	switch {
	case errors.Is(err, audit.ErrRangeRefused):
		// An empty or broken range is refused: a snapshot vouches for what it covers.
		writeError(w, &apiError{Status: http.StatusConflict, Code: "snapshot_refused", Msg: err.Error()})
		return
	case errors.Is(err, hlc.ErrClockDrift):
		s.fail(w, r, err, err.Error())
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toSnapshotJSON(snap))
}

func toSnapshotJSON(sn *driver.Snapshot) snapshotJSON {
	return snapshotJSON{BatchID: sn.BatchID, PartitionKey: sn.Key.PartitionKey, SnapshotHLC: sn.SnapshotHLC,
		FromPos: sn.FromPos, ToPos: sn.ToPos, FromLink: sn.FromLink.String(), ToLink: sn.ToLink.String(),
		EntryCount: sn.EntryCount, MerkleRoot: sn.MerkleRoot.String(), KeyID: sn.KeyID, Envelope: sn.Envelope, CreatedAt: sn.CreatedAt.UTC()}
}
