-- The dashboard's periodic jobs page shows each periodic job's last
-- occurrence: the latest log entry whose idempotency key is that job's,
-- ordo.periodic:<name>@<occurrence time, RFC 3339 UTC> (worker,
-- driver.PeriodicKey). Nothing else indexes idempotency keys, and a scan
-- of a tenant's log for them would read every entry since. The index is
-- partial, so it holds the periodic entries only, and in byte order
-- (COLLATE "C"), so a name's keys are one range whatever the database's
-- collation, latest occurrence last.

-- +goose Up
CREATE INDEX idx_scheduler_log_periodic ON scheduler.scheduler_log (tenant_id, idempotency_key COLLATE "C")
    WHERE idempotency_key LIKE 'ordo.periodic:%';

-- +goose Down
DROP INDEX scheduler.idx_scheduler_log_periodic;
