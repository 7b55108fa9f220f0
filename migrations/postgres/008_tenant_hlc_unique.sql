-- idx_scheduler_log_tenant_hlc becomes the index of the log's
-- UNIQUE (tenant_id, t_hlc, partition_key, job_id) constraint. Both
-- indexes began with (tenant_id, t_hlc), so every append paid for two
-- copies of the same order, and the planner chose between them by cost:
-- under load it read a tenant's history through the constraint's
-- unnamed index, while the guide asks operators to check that
-- idx_scheduler_log_tenant_hlc is the one used. Now there is one index,
-- under the guide's name, still enforcing the constraint.

-- +goose Up
DROP INDEX scheduler.idx_scheduler_log_tenant_hlc;
ALTER TABLE scheduler.scheduler_log DROP CONSTRAINT scheduler_log_tenant_id_t_hlc_partition_key_job_id_key;
CREATE UNIQUE INDEX idx_scheduler_log_tenant_hlc ON scheduler.scheduler_log (tenant_id, t_hlc, partition_key, job_id);
ALTER TABLE scheduler.scheduler_log ADD CONSTRAINT idx_scheduler_log_tenant_hlc UNIQUE USING INDEX idx_scheduler_log_tenant_hlc;

-- +goose Down
ALTER TABLE scheduler.scheduler_log DROP CONSTRAINT idx_scheduler_log_tenant_hlc;
ALTER TABLE scheduler.scheduler_log ADD CONSTRAINT scheduler_log_tenant_id_t_hlc_partition_key_job_id_key
    UNIQUE (tenant_id, t_hlc, partition_key, job_id);
CREATE INDEX idx_scheduler_log_tenant_hlc ON scheduler.scheduler_log (tenant_id, t_hlc);
