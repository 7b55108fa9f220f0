-- The primary keys of jobs, job_state, batch_snapshot and operator_actions
-- take tenant_id, after their id: the keys docs/scaling.md ("Before
-- distributing") says a distributed PostgreSQL (Citus) needs. It enforces
-- a unique key on one shard only, so it refuses to distribute a table
-- whose unique keys lack the distribution column; where in the key the
-- column stands does not matter to it. Nothing ordo relies on changes: a
-- job id is UUIDv5 of its tenant's job (docs/chain-spec.md), so it is
-- unique within its tenant exactly when it is unique at all; batch ids
-- are random UUIDs and action ids a sequence's.
--
-- The id comes first because jobs are still looked up by id alone (an
-- admin's reads, a retry or delete by id, the joins between the two sides,
-- the rescuer): the key's index serves those as the old key did, and no
-- second index on the id is needed. (tenant_id, id) would need one, and an
-- insert into jobs or job_state would maintain both.
--
-- Each key is rebuilt under the table's exclusive lock. On big tables,
-- build the new indexes first without it (CREATE UNIQUE INDEX
-- CONCURRENTLY, under the names below): the migration then uses them.

-- +goose Up
CREATE UNIQUE INDEX IF NOT EXISTS jobs_tenant_pkey ON scheduler.jobs (id, tenant_id);
ALTER TABLE scheduler.jobs DROP CONSTRAINT jobs_pkey,
    ADD CONSTRAINT jobs_pkey PRIMARY KEY USING INDEX jobs_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS job_state_tenant_pkey ON scheduler.job_state (job_id, tenant_id);
ALTER TABLE scheduler.job_state DROP CONSTRAINT job_state_pkey,
    ADD CONSTRAINT job_state_pkey PRIMARY KEY USING INDEX job_state_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS batch_snapshot_tenant_pkey ON scheduler.batch_snapshot (batch_id, tenant_id);
ALTER TABLE scheduler.batch_snapshot DROP CONSTRAINT batch_snapshot_pkey,
    ADD CONSTRAINT batch_snapshot_pkey PRIMARY KEY USING INDEX batch_snapshot_tenant_pkey;

CREATE UNIQUE INDEX IF NOT EXISTS operator_actions_tenant_pkey ON scheduler.operator_actions (action_id, tenant_id);
ALTER TABLE scheduler.operator_actions DROP CONSTRAINT operator_actions_pkey,
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY USING INDEX operator_actions_tenant_pkey;

-- +goose Down
-- Fails if a job, batch or action id meanwhile occurs in two tenants.
ALTER TABLE scheduler.operator_actions DROP CONSTRAINT operator_actions_pkey,
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY (action_id);

ALTER TABLE scheduler.batch_snapshot DROP CONSTRAINT batch_snapshot_pkey,
    ADD CONSTRAINT batch_snapshot_pkey PRIMARY KEY (batch_id);

ALTER TABLE scheduler.job_state DROP CONSTRAINT job_state_pkey,
    ADD CONSTRAINT job_state_pkey PRIMARY KEY (job_id);

ALTER TABLE scheduler.jobs DROP CONSTRAINT jobs_pkey,
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);
