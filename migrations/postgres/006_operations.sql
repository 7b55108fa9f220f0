-- Operator state for the dashboard (docs/dashboard.md): paused queues, the
-- last verification of each tenant, each node's clock as it last reported
-- it, and a record of what operators did. None of it is part of the chain:
-- scheduler_log stays append-only and records enqueues, not operations.

-- +goose Up
-- A paused queue: the tenant's jobs of one kind, or with kind '' all of the
-- tenant's jobs. Dequeue skips them on both read sides; nothing else
-- changes (enqueue, cancel and running leases go on).
CREATE TABLE scheduler.paused_queues (
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL DEFAULT '',
    paused_at TIMESTAMPTZ NOT NULL,
    paused_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, kind)
);

-- The latest verification of each tenant's chains (API or dashboard).
CREATE TABLE scheduler.verification_results (
    tenant_id       TEXT PRIMARY KEY,
    verified_at     TIMESTAMPTZ NOT NULL,
    valid           BOOLEAN NOT NULL,
    entries_checked BIGINT NOT NULL,
    issue_count     BIGINT NOT NULL,
    issues          JSONB NOT NULL,   -- the first issues, as audit.Issue JSON
    source          TEXT NOT NULL DEFAULT ''
);

-- Each node's clock as it last reported it (every few seconds, and at once
-- after a clock refusal), written by `ordo serve`.
CREATE TABLE scheduler.nodes (
    node_id        TEXT PRIMARY KEY,
    started_at     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    wall_ms        BIGINT NOT NULL,  -- the node's wall clock when it reported
    last_hlc       TEXT NOT NULL,    -- the node's HLC then (canonical text)
    mode           TEXT NOT NULL,
    clock_refusals BIGINT NOT NULL DEFAULT 0
);

-- What operators did through the dashboard: retries, cancels, pauses.
CREATE TABLE scheduler.operator_actions (
    action_id  BIGSERIAL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    job_id     UUID,            -- NULL for queue actions
    kind       TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_operator_actions_job ON scheduler.operator_actions (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX idx_operator_actions_tenant ON scheduler.operator_actions (tenant_id, action_id);

-- +goose Down
DROP TABLE scheduler.operator_actions;
DROP TABLE scheduler.nodes;
DROP TABLE scheduler.verification_results;
DROP TABLE scheduler.paused_queues;
