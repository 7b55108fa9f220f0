-- The lease-expiry indexes become partial on lease_expires_at IS NOT NULL
-- instead of status = 'running'. With the old predicate, a fenced update
-- of running jobs by id (WHERE job_id = ... AND status = 'running') could
-- be planned as a scan of "all running jobs" through this index whenever
-- the statistics still said few jobs were running (right after a bulk
-- enqueue), and a cached plan kept that choice: a batch of 1,000
-- completions then compared every pair, for seconds. The new predicate is
-- implied by the rescue query's lease_expires_at < $1, which still uses
-- the index, and by nothing the fenced updates say, so they go by
-- primary key.

-- +goose Up
DROP INDEX scheduler.idx_job_state_lease_expiry;
CREATE INDEX idx_job_state_lease_expiry ON scheduler.job_state (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;
DROP INDEX scheduler.idx_jobs_lease_expiry;
CREATE INDEX idx_jobs_lease_expiry ON scheduler.jobs (lease_expires_at)
    WHERE lease_expires_at IS NOT NULL;

-- +goose Down
DROP INDEX scheduler.idx_jobs_lease_expiry;
CREATE INDEX idx_jobs_lease_expiry ON scheduler.jobs (lease_expires_at)
    WHERE status = 'running';
DROP INDEX scheduler.idx_job_state_lease_expiry;
CREATE INDEX idx_job_state_lease_expiry ON scheduler.job_state (lease_expires_at)
    WHERE status = 'running';
