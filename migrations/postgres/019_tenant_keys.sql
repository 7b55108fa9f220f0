-- The primary keys of jobs, job_state, batch_snapshot and operator_actions
-- take tenant_id in front of their id, the keys docs/scaling.md ("Before
-- distributing") says a distributed PostgreSQL (Citus) needs: it enforces
-- a unique key on one shard only, so it refuses to distribute a table
-- whose unique keys lack the distribution column. Nothing ordo relies on
-- changes: a job id is UUIDv5 of its tenant's job (docs/chain-spec.md),
-- so it is unique within its tenant exactly when it is unique at all;
-- batch ids are random UUIDs and action ids a sequence's.
--
-- Job ids are still looked up without their tenant (an admin's reads, a
-- retry or delete by id, the joins between the two sides, the rescuer),
-- and the new keys cannot serve that, so jobs and job_state get a plain,
-- non-unique index on the id (Citus allows those). The tenant's actions
-- are listed by (tenant_id, action_id), which the new key of
-- operator_actions is, so the index that did it goes. Snapshots are read
-- by tenant and partition (idx_batch_snapshot_chain), not by batch id.
--
-- Each key is rebuilt under the table's exclusive lock. On big tables,
-- build the new indexes first without it (CREATE [UNIQUE] INDEX
-- CONCURRENTLY, under the names below): the migration then uses them.

-- +goose Up
CREATE UNIQUE INDEX IF NOT EXISTS jobs_tenant_pkey ON scheduler.jobs (tenant_id, id);
CREATE INDEX IF NOT EXISTS idx_jobs_id ON scheduler.jobs (id);
ALTER TABLE scheduler.jobs DROP CONSTRAINT jobs_pkey,
    ADD CONSTRAINT jobs_pkey PRIMARY KEY USING INDEX jobs_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS job_state_tenant_pkey ON scheduler.job_state (tenant_id, job_id);
CREATE INDEX IF NOT EXISTS idx_job_state_job ON scheduler.job_state (job_id);
ALTER TABLE scheduler.job_state DROP CONSTRAINT job_state_pkey,
    ADD CONSTRAINT job_state_pkey PRIMARY KEY USING INDEX job_state_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS batch_snapshot_tenant_pkey ON scheduler.batch_snapshot (tenant_id, batch_id);
ALTER TABLE scheduler.batch_snapshot DROP CONSTRAINT batch_snapshot_pkey,
    ADD CONSTRAINT batch_snapshot_pkey PRIMARY KEY USING INDEX batch_snapshot_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS operator_actions_tenant_pkey ON scheduler.operator_actions (tenant_id, action_id);
ALTER TABLE scheduler.operator_actions DROP CONSTRAINT operator_actions_pkey,
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY USING INDEX operator_actions_tenant_pkey;
DROP INDEX scheduler.idx_operator_actions_tenant;

-- +goose Down
-- Fails if a job, batch or action id meanwhile occurs in two tenants.
CREATE INDEX idx_operator_actions_tenant ON scheduler.operator_actions (tenant_id, action_id);
ALTER TABLE scheduler.operator_actions DROP CONSTRAINT operator_actions_pkey,
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY (action_id);

ALTER TABLE scheduler.batch_snapshot DROP CONSTRAINT batch_snapshot_pkey,
    ADD CONSTRAINT batch_snapshot_pkey PRIMARY KEY (batch_id);

ALTER TABLE scheduler.job_state DROP CONSTRAINT job_state_pkey,
    ADD CONSTRAINT job_state_pkey PRIMARY KEY (job_id);
DROP INDEX scheduler.idx_job_state_job;

ALTER TABLE scheduler.jobs DROP CONSTRAINT jobs_pkey,
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
DROP INDEX scheduler.idx_jobs_id;
