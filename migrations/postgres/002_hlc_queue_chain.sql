-- HLC ordering with cryptographic chain linking (the guide's migration).
-- scheduler_log is append-only: ordo never updates or deletes its rows.
-- Mutable job state lives in the narrow job_state table beside it, so the
-- log does not bloat under the UPDATE traffic of a busy queue.

-- +goose Up
CREATE TABLE scheduler.scheduler_log (
    seq_bigint      BIGSERIAL PRIMARY KEY,            -- storage order, not authoritative
    tenant_id       TEXT NOT NULL,
    t_hlc           TEXT COLLATE "C" NOT NULL,        -- canonical HLC text; byte order = HLC order
    partition_key   TEXT NOT NULL DEFAULT '',
    job_id          UUID NOT NULL,
    payload_hash    BYTEA NOT NULL CHECK (length(payload_hash) = 32),
    prev_link       BYTEA CHECK (length(prev_link) = 32), -- NULL for the first entry of a chain
    link            BYTEA NOT NULL CHECK (length(link) = 32),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(), -- wall clock, not authoritative
    -- ordo's additions: where the entry sits in its chain, and the job as
    -- enqueued, so the log alone can rebuild and re-verify every job.
    chain_pos       BIGINT NOT NULL CHECK (chain_pos >= 0),
    node_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,  -- the RFC 8785 canonical JSON that payload_hash covers, byte for byte
    priority        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at          TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT,
    UNIQUE (tenant_id, t_hlc, partition_key, job_id)
);

CREATE INDEX idx_scheduler_log_tenant_hlc ON scheduler.scheduler_log (tenant_id, t_hlc);
-- Chain order, for verification and proofs. Deliberately not unique on
-- job_id: a duplicated job id is something the verifier must be able to see.
CREATE UNIQUE INDEX idx_scheduler_log_chain ON scheduler.scheduler_log (tenant_id, partition_key, chain_pos);
CREATE INDEX idx_scheduler_log_job ON scheduler.scheduler_log (job_id);

-- One row per chain: appending reads and locks the head in O(1).
CREATE TABLE scheduler.chain_heads (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    last_link     BYTEA NOT NULL CHECK (length(last_link) = 32),
    last_t_hlc    TEXT COLLATE "C" NOT NULL,
    entry_count   BIGINT NOT NULL CHECK (entry_count >= 1),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, partition_key)
);

-- Mutable state of the jobs enqueued on the HLC side.
CREATE TABLE scheduler.job_state (
    job_id           UUID PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    t_hlc            TEXT COLLATE "C" NOT NULL,
    kind             TEXT NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled', 'chain_violation')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at           TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_token      UUID,
    lease_expires_at TIMESTAMPTZ,
    last_error       TEXT
);

-- HLC dequeue order over the jobs that can still run.
CREATE INDEX idx_job_state_dequeue ON scheduler.job_state (t_hlc)
    WHERE status IN ('pending', 'scheduled');
CREATE INDEX idx_job_state_lease_expiry ON scheduler.job_state (lease_expires_at)
    WHERE status = 'running';
CREATE INDEX idx_job_state_tenant_hlc ON scheduler.job_state (tenant_id, t_hlc);
-- Per-tenant HLC dequeue, for fair sharing between tenants.
CREATE INDEX idx_job_state_tenant_dequeue ON scheduler.job_state (tenant_id, t_hlc)
    WHERE status IN ('pending', 'scheduled');

-- Signed records of ranges of one chain.
CREATE TABLE scheduler.batch_snapshot (
    batch_id        UUID PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    partition_key   TEXT NOT NULL DEFAULT '',
    snapshot_hlc    TEXT COLLATE "C" NOT NULL,
    from_chain_pos  BIGINT NOT NULL,
    to_chain_pos    BIGINT NOT NULL,
    from_chain_link BYTEA NOT NULL CHECK (length(from_chain_link) = 32),
    to_chain_link   BYTEA NOT NULL CHECK (length(to_chain_link) = 32),
    entry_count     BIGINT NOT NULL CHECK (entry_count >= 1),
    merkle_root     BYTEA NOT NULL CHECK (length(merkle_root) = 32),
    envelope        JSONB NOT NULL,  -- DSSE envelope
    key_id          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (to_chain_pos - from_chain_pos + 1 = entry_count)
);
CREATE INDEX idx_batch_snapshot_chain ON scheduler.batch_snapshot (tenant_id, partition_key, snapshot_hlc);

-- Per node, an upper bound on the physical part of every HLC timestamp it
-- issued, so a restarted node resumes above it.
CREATE TABLE scheduler.hlc_state (
    node_id        TEXT PRIMARY KEY,
    upper_bound_ms BIGINT NOT NULL CHECK (upper_bound_ms >= 0),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE scheduler.hlc_state;
DROP TABLE scheduler.batch_snapshot;
DROP TABLE scheduler.job_state;
DROP TABLE scheduler.chain_heads;
DROP TABLE scheduler.scheduler_log;
