-- SQLite mirror of postgres/002_hlc_queue_chain.sql. Text compares with
-- SQLite's default BINARY collation (memcmp), so t_hlc orders bytewise
-- exactly as COLLATE "C" does in PostgreSQL.

-- +goose Up
CREATE TABLE scheduler_log (
    seq_bigint      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL,
    t_hlc           TEXT NOT NULL,
    partition_key   TEXT NOT NULL DEFAULT '',
    job_id          TEXT NOT NULL,
    payload_hash    BLOB NOT NULL CHECK (length(payload_hash) = 32),
    prev_link       BLOB CHECK (length(prev_link) = 32),
    link            BLOB NOT NULL CHECK (length(link) = 32),
    created_at      INTEGER NOT NULL,
    chain_pos       INTEGER NOT NULL CHECK (chain_pos >= 0),
    node_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    priority        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at          INTEGER NOT NULL,
    idempotency_key TEXT,
    UNIQUE (tenant_id, t_hlc, partition_key, job_id)
) STRICT;

CREATE INDEX idx_scheduler_log_tenant_hlc ON scheduler_log (tenant_id, t_hlc);
CREATE UNIQUE INDEX idx_scheduler_log_chain ON scheduler_log (tenant_id, partition_key, chain_pos);
CREATE INDEX idx_scheduler_log_job ON scheduler_log (job_id);

CREATE TABLE chain_heads (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    last_link     BLOB NOT NULL CHECK (length(last_link) = 32),
    last_t_hlc    TEXT NOT NULL,
    entry_count   INTEGER NOT NULL CHECK (entry_count >= 1),
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, partition_key)
) STRICT;

CREATE TABLE job_state (
    job_id           TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    t_hlc            TEXT NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled', 'chain_violation')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at           INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_token      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT
) STRICT;

CREATE INDEX idx_job_state_dequeue ON job_state (t_hlc) WHERE status IN ('pending', 'scheduled');
CREATE INDEX idx_job_state_lease_expiry ON job_state (lease_expires_at) WHERE status = 'running';
CREATE INDEX idx_job_state_tenant_hlc ON job_state (tenant_id, t_hlc);
-- Per-tenant HLC dequeue, for fair sharing between tenants (as in postgres).
CREATE INDEX idx_job_state_tenant_dequeue ON job_state (tenant_id, t_hlc) WHERE status IN ('pending', 'scheduled');
-- Strict partitions: each partition's earliest unfinished job, found with
-- one seek per partition (a skip scan) instead of a pass over the backlog.
CREATE INDEX idx_job_state_partition_head ON job_state (tenant_id, partition_key, t_hlc)
    WHERE status IN ('pending', 'scheduled', 'running');

-- The same two for legacy reads. They belong with 001 (postgres has
-- idx_jobs_tenant_dequeue there) but are added here so that a database
-- already at 001 gets them.
CREATE INDEX idx_jobs_tenant_dequeue ON jobs (tenant_id, priority DESC, created_at, id)
    WHERE status IN ('pending', 'scheduled');
CREATE INDEX idx_jobs_partition_head ON jobs (tenant_id, COALESCE(project_id, ''), created_at, id)
    WHERE status IN ('pending', 'scheduled', 'running');

CREATE TABLE batch_snapshot (
    batch_id        TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    partition_key   TEXT NOT NULL DEFAULT '',
    snapshot_hlc    TEXT NOT NULL,
    from_chain_pos  INTEGER NOT NULL,
    to_chain_pos    INTEGER NOT NULL,
    from_chain_link BLOB NOT NULL CHECK (length(from_chain_link) = 32),
    to_chain_link   BLOB NOT NULL CHECK (length(to_chain_link) = 32),
    entry_count     INTEGER NOT NULL CHECK (entry_count >= 1),
    merkle_root     BLOB NOT NULL CHECK (length(merkle_root) = 32),
    envelope        TEXT NOT NULL CHECK (json_valid(envelope)),
    key_id          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    CHECK (to_chain_pos - from_chain_pos + 1 = entry_count)
) STRICT;
CREATE INDEX idx_batch_snapshot_chain ON batch_snapshot (tenant_id, partition_key, snapshot_hlc);

CREATE TABLE hlc_state (
    node_id        TEXT PRIMARY KEY,
    upper_bound_ms INTEGER NOT NULL CHECK (upper_bound_ms >= 0),
    updated_at     INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP INDEX idx_jobs_partition_head;
DROP INDEX idx_jobs_tenant_dequeue;
DROP TABLE hlc_state;
DROP TABLE batch_snapshot;
DROP TABLE job_state;
DROP TABLE chain_heads;
DROP TABLE scheduler_log;
