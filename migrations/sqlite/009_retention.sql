-- SQLite mirror of postgres/009_retention.sql: the finished jobs of each
-- side by status and last change, for the retention cleaner.

-- +goose Up
CREATE INDEX idx_job_state_finished ON job_state (status, updated_at)
    WHERE status IN ('succeeded', 'cancelled', 'failed');
CREATE INDEX idx_jobs_finished ON jobs (status, updated_at)
    WHERE status IN ('succeeded', 'cancelled', 'failed');

-- +goose Down
DROP INDEX idx_jobs_finished;
DROP INDEX idx_job_state_finished;
