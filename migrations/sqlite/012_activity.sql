-- SQLite mirror of postgres/012_activity.sql: each job's first start and
-- how long it waited for it, and the per-minute activity rollup of the
-- dashboard's charts. Times are Unix milliseconds.

-- +goose Up
ALTER TABLE job_state ADD COLUMN started_at INTEGER;
ALTER TABLE job_state ADD COLUMN start_wait_ms INTEGER;
ALTER TABLE jobs ADD COLUMN started_at INTEGER;
ALTER TABLE jobs ADD COLUMN start_wait_ms INTEGER;
CREATE INDEX idx_job_state_started ON job_state (started_at) WHERE started_at IS NOT NULL;
CREATE INDEX idx_jobs_started ON jobs (started_at) WHERE started_at IS NOT NULL;

CREATE TABLE activity_minutes (
    tenant_id   TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    enqueued    INTEGER NOT NULL DEFAULT 0,
    started     INTEGER NOT NULL DEFAULT 0,
    succeeded   INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    wait_sum_ms INTEGER NOT NULL DEFAULT 0,
    wait_max_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, minute)
) STRICT;
CREATE INDEX idx_activity_minutes_minute ON activity_minutes (minute);

CREATE TABLE activity_rollup (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    rolled_until INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE activity_rollup;
DROP TABLE activity_minutes;
DROP INDEX idx_jobs_started;
DROP INDEX idx_job_state_started;
ALTER TABLE jobs DROP COLUMN start_wait_ms;
ALTER TABLE jobs DROP COLUMN started_at;
ALTER TABLE job_state DROP COLUMN start_wait_ms;
ALTER TABLE job_state DROP COLUMN started_at;
