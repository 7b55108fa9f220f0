-- Each job keeps the errors of its last attempts (at most 20, oldest
-- first), as a JSON array of {"at": Unix ms, "attempt": n, "error": text,
-- "worker": lease owner}: `ordo jobs show`, the API and the dashboard's job
-- page show them. Appended by the fenced transition that ends a failed
-- attempt (a failure, a handler's cancel, a chain violation, an expired
-- lease), in the same UPDATE, so a successful attempt costs nothing more.
-- Both sides carry it, as they carry last_error.

-- +goose Up
ALTER TABLE scheduler.jobs ADD COLUMN attempt_errors JSONB;
ALTER TABLE scheduler.job_state ADD COLUMN attempt_errors JSONB;

-- +goose Down
ALTER TABLE scheduler.job_state DROP COLUMN attempt_errors;
ALTER TABLE scheduler.jobs DROP COLUMN attempt_errors;
