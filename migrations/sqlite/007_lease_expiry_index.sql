-- SQLite mirror of postgres/007_lease_expiry_index.sql (the reason is
-- PostgreSQL's planner; the schemas stay alike).

-- +goose Up
DROP INDEX idx_job_state_lease_expiry;
CREATE INDEX idx_job_state_lease_expiry ON job_state (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
DROP INDEX idx_jobs_lease_expiry;
CREATE INDEX idx_jobs_lease_expiry ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

-- +goose Down
DROP INDEX idx_jobs_lease_expiry;
CREATE INDEX idx_jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'running';
DROP INDEX idx_job_state_lease_expiry;
CREATE INDEX idx_job_state_lease_expiry ON job_state (lease_expires_at) WHERE status = 'running';
