-- SQLite mirror of postgres/001_legacy_jobs.sql. SQLite has no schemas, so
-- the tables carry the same names without the "scheduler." prefix. Times
-- are Unix milliseconds, UUIDs their canonical text, JSON canonical text.

-- +goose Up
CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    project_id       TEXT,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL CHECK (json_valid(payload)),
    payload_digest   TEXT NOT NULL CHECK (length(payload_digest) = 64),
    priority         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT
) STRICT;

CREATE INDEX idx_jobs_dequeue ON jobs (priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled');
CREATE INDEX idx_jobs_lease_expiry ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX idx_jobs_tenant_created ON jobs (tenant_id, created_at);

-- +goose Down
DROP TABLE jobs;
