-- Audit: each chain's RFC 6962 Merkle tree (leaf i = the link of the entry
-- at chain_pos i), kept by the checkpointer off the enqueue hot path, and
-- the signed checkpoints of those trees. See docs/audit.md.

-- +goose Up
-- How many leaves of each chain's tree are hashed.
CREATE TABLE scheduler.chain_trees (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    tree_size     BIGINT NOT NULL CHECK (tree_size >= 0),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, partition_key)
);

-- The tree's stored hashes, indexed as golang.org/x/mod/sumdb/tlog
-- numbers them (StoredHashIndex): about two per leaf.
CREATE TABLE scheduler.chain_tree_hashes (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    hash_index    BIGINT NOT NULL CHECK (hash_index >= 0),
    hash          BYTEA NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, partition_key, hash_index)
);

-- Signed checkpoints: C2SP signed notes stating a tree's size and root.
CREATE TABLE scheduler.chain_checkpoints (
    tenant_id     TEXT NOT NULL,
    partition_key TEXT NOT NULL DEFAULT '',
    tree_size     BIGINT NOT NULL CHECK (tree_size >= 1),
    root_hash     BYTEA NOT NULL CHECK (length(root_hash) = 32),
    note          TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, partition_key, tree_size)
);

-- +goose Down
DROP TABLE scheduler.chain_checkpoints;
DROP TABLE scheduler.chain_tree_hashes;
DROP TABLE scheduler.chain_trees;
