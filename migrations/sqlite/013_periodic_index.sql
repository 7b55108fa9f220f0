-- SQLite mirror of postgres/013_periodic_index.sql (SQLite compares text
-- bytewise already).

-- +goose Up
CREATE INDEX idx_scheduler_log_periodic ON scheduler_log (tenant_id, idempotency_key)
    WHERE idempotency_key LIKE 'ordo.periodic:%';

-- +goose Down
DROP INDEX idx_scheduler_log_periodic;
