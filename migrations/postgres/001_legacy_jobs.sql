-- The legacy queue as the migration guide assumes it: one mutable row per
-- job, read in (priority DESC, created_at) order.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS scheduler;

CREATE TABLE scheduler.jobs (
    id               UUID PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    project_id       TEXT,
    kind             TEXT NOT NULL,
    payload          JSONB NOT NULL,
    payload_digest   TEXT NOT NULL CHECK (payload_digest ~ '^[0-9a-f]{64}$'),
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    run_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner      TEXT,
    lease_token      UUID,
    lease_expires_at TIMESTAMPTZ,
    last_error       TEXT
);

-- Legacy dequeue order over the jobs that can still run.
CREATE INDEX idx_jobs_dequeue ON scheduler.jobs (priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled');
-- Expired leases are found without scanning finished jobs.
CREATE INDEX idx_jobs_lease_expiry ON scheduler.jobs (lease_expires_at)
    WHERE status = 'running';
CREATE INDEX idx_jobs_tenant_created ON scheduler.jobs (tenant_id, created_at);
-- Per-tenant legacy dequeue, for fair sharing between tenants.
CREATE INDEX idx_jobs_tenant_dequeue ON scheduler.jobs (tenant_id, priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled');

-- +goose Down
DROP TABLE scheduler.jobs;
