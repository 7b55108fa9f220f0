-- SQLite mirror of postgres/006_operations.sql. Times are Unix milliseconds.

-- +goose Up
CREATE TABLE paused_queues (
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL DEFAULT '',
    paused_at INTEGER NOT NULL,
    paused_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, kind)
) STRICT;

CREATE TABLE verification_results (
    tenant_id       TEXT PRIMARY KEY,
    verified_at     INTEGER NOT NULL,
    valid           INTEGER NOT NULL CHECK (valid IN (0, 1)),
    entries_checked INTEGER NOT NULL,
    issue_count     INTEGER NOT NULL,
    issues          TEXT NOT NULL CHECK (json_valid(issues)),
    source          TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE nodes (
    node_id        TEXT PRIMARY KEY,
    started_at     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    wall_ms        INTEGER NOT NULL,
    last_hlc       TEXT NOT NULL,
    mode           TEXT NOT NULL,
    clock_refusals INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE operator_actions (
    action_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT NOT NULL,
    job_id     TEXT,
    kind       TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    at         INTEGER NOT NULL
) STRICT;
CREATE INDEX idx_operator_actions_job ON operator_actions (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX idx_operator_actions_tenant ON operator_actions (tenant_id, action_id);

-- +goose Down
DROP TABLE operator_actions;
DROP TABLE nodes;
DROP TABLE verification_results;
DROP TABLE paused_queues;
