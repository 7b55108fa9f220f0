-- SQLite mirror of postgres/004_audit.sql.

-- +goose Up
CREATE TABLE chain_trees (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    tree_size     INTEGER NOT NULL CHECK (tree_size >= 0),
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, partition_key)
) STRICT;

CREATE TABLE chain_tree_hashes (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    hash_index    INTEGER NOT NULL CHECK (hash_index >= 0),
    hash          BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, partition_key, hash_index)
) STRICT, WITHOUT ROWID;

CREATE TABLE chain_checkpoints (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    tree_size     INTEGER NOT NULL CHECK (tree_size >= 1),
    root_hash     BLOB NOT NULL CHECK (length(root_hash) = 32),
    note          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, partition_key, tree_size)
) STRICT;

-- +goose Down
DROP TABLE chain_checkpoints;
DROP TABLE chain_tree_hashes;
DROP TABLE chain_trees;
