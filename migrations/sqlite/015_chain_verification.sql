-- SQLite mirror of postgres/015_chain_verification.sql: how far the
-- leader's periodic, incremental verification has checked each chain.
-- Times are Unix milliseconds.

-- +goose Up
CREATE TABLE chain_verification (
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    verified_size    INTEGER NOT NULL CHECK (verified_size >= 0),
    verified_link    BLOB CHECK (verified_link IS NULL OR length(verified_link) = 32),
    verified_t_hlc   TEXT,
    tree_edge        BLOB NOT NULL DEFAULT x'' CHECK (length(tree_edge) % 32 = 0),
    checkpoint_size  INTEGER NOT NULL DEFAULT 0,
    last_run_at      INTEGER NOT NULL,
    last_valid       INTEGER NOT NULL CHECK (last_valid IN (0, 1)),
    last_entries     INTEGER NOT NULL,
    last_issue_count INTEGER NOT NULL,
    last_issues      TEXT NOT NULL CHECK (json_valid(last_issues)),
    PRIMARY KEY (tenant_id, partition_key),
    CHECK ((verified_size = 0) = (verified_link IS NULL)),
    CHECK ((verified_size = 0) = (verified_t_hlc IS NULL))
) STRICT;

-- +goose Down
DROP TABLE chain_verification;
