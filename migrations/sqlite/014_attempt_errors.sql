-- SQLite mirror of postgres/014_attempt_errors.sql: each job's last 20
-- attempt errors, a JSON array (text) of {"at": Unix ms, "attempt": n,
-- "error": text, "worker": lease owner}, oldest first.

-- +goose Up
ALTER TABLE jobs ADD COLUMN attempt_errors TEXT;
ALTER TABLE job_state ADD COLUMN attempt_errors TEXT;

-- +goose Down
ALTER TABLE job_state DROP COLUMN attempt_errors;
ALTER TABLE jobs DROP COLUMN attempt_errors;
