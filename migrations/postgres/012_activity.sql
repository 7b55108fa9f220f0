-- The dashboard's activity charts (docs/dashboard.md): jobs enqueued,
-- started, succeeded and failed per minute, and how long jobs waited for
-- their first start.
--
-- A job's first start was not recorded anywhere: updated_at moves with
-- every transition. started_at is set by the lease that first grants the
-- job (COALESCE keeps it through retries, snoozes and rescues), and
-- start_wait_ms with it: that lease's time minus the job's run_at as it
-- stood then, which is when the job became due (run_at is never before
-- the enqueue). It is stored rather than computed later because run_at
-- moves with every retry's backoff. Both are written by the UPDATE that
-- leases the job anyway; the partial index gets an entry from the first
-- lease on, so finding the jobs first started in a minute is one range
-- scan whatever the backlog.
--
-- activity_minutes is a per-tenant, per-minute rollup of those numbers,
-- written by the maintenance leader once a minute has settled (driver:
-- RollupActivity) up to activity_rollup.rolled_until. It is what keeps
-- the day chart cheap (at most 1,440 rows a tenant instead of a day of
-- jobs) and right after retention has pruned the jobs it counts; minutes
-- after rolled_until are read from the job tables themselves.

-- +goose Up
ALTER TABLE scheduler.job_state ADD COLUMN started_at TIMESTAMPTZ;
ALTER TABLE scheduler.job_state ADD COLUMN start_wait_ms BIGINT;
ALTER TABLE scheduler.jobs ADD COLUMN started_at TIMESTAMPTZ;
ALTER TABLE scheduler.jobs ADD COLUMN start_wait_ms BIGINT;
CREATE INDEX idx_job_state_started ON scheduler.job_state (started_at) WHERE started_at IS NOT NULL;
CREATE INDEX idx_jobs_started ON scheduler.jobs (started_at) WHERE started_at IS NOT NULL;

CREATE TABLE scheduler.activity_minutes (
    tenant_id   TEXT NOT NULL,
    minute      TIMESTAMPTZ NOT NULL,          -- the minute's start
    enqueued    BIGINT NOT NULL DEFAULT 0,
    started     BIGINT NOT NULL DEFAULT 0,     -- first starts
    succeeded   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,     -- failed for good (no retry left)
    wait_sum_ms BIGINT NOT NULL DEFAULT 0,     -- of the first starts' start_wait_ms
    wait_max_ms BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, minute)
);
-- Every tenant's minutes at once (an admin's charts), and pruning.
CREATE INDEX idx_activity_minutes_minute ON scheduler.activity_minutes (minute);

-- One row: the minutes before rolled_until are in activity_minutes.
CREATE TABLE scheduler.activity_rollup (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    rolled_until TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE scheduler.activity_rollup;
DROP TABLE scheduler.activity_minutes;
DROP INDEX scheduler.idx_jobs_started;
DROP INDEX scheduler.idx_job_state_started;
ALTER TABLE scheduler.jobs DROP COLUMN start_wait_ms;
ALTER TABLE scheduler.jobs DROP COLUMN started_at;
ALTER TABLE scheduler.job_state DROP COLUMN start_wait_ms;
ALTER TABLE scheduler.job_state DROP COLUMN started_at;
