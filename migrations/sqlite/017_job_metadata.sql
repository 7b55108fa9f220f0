-- SQLite mirror of postgres/017_job_metadata.sql: a job's metadata, a
-- JSON object (text) of string keys and values, outside the payload hash.

-- +goose Up
ALTER TABLE jobs ADD COLUMN metadata TEXT;
ALTER TABLE job_state ADD COLUMN metadata TEXT;

-- +goose Down
ALTER TABLE job_state DROP COLUMN metadata;
ALTER TABLE jobs DROP COLUMN metadata;
