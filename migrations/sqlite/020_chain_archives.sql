-- SQLite mirror of postgres/020_chain_archives.sql: archived ranges of
-- chains, and what the database keeps of them once their entries are
-- dropped. Times are Unix milliseconds.

-- +goose Up
CREATE TABLE chain_archives (
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    start_pos        INTEGER NOT NULL CHECK (start_pos >= 0),
    end_pos          INTEGER NOT NULL,
    first_prev_link  BLOB CHECK (length(first_prev_link) = 32),
    last_link        BLOB NOT NULL CHECK (length(last_link) = 32),
    last_t_hlc       TEXT NOT NULL,
    tree_edge        BLOB NOT NULL CHECK (length(tree_edge) % 32 = 0),
    root_hash        BLOB NOT NULL CHECK (length(root_hash) = 32),
    checkpoint       TEXT NOT NULL,
    archived_at      INTEGER NOT NULL,
    dropped_at       INTEGER,
    dropped_entries  INTEGER NOT NULL DEFAULT 0,
    dropped_jobs     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, partition_key, start_pos),
    CHECK (end_pos > start_pos),
    CHECK ((start_pos = 0) = (first_prev_link IS NULL))
) STRICT;

CREATE TABLE archived_jobs (
    tenant_id     TEXT NOT NULL,
    job_id        TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    chain_pos     INTEGER NOT NULL,
    t_hlc         TEXT NOT NULL,
    link          BLOB NOT NULL CHECK (length(link) = 32),
    payload_hash  BLOB NOT NULL CHECK (length(payload_hash) = 32),
    PRIMARY KEY (job_id)
) STRICT;

-- +goose Down
DROP TABLE archived_jobs;
DROP TABLE chain_archives;
