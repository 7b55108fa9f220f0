-- SQLite mirror of postgres/016_chain_cosignatures.sql: witness
-- cosignatures of signed checkpoints. Times are Unix milliseconds.

-- +goose Up
CREATE TABLE chain_cosignatures (
    tenant_id      TEXT NOT NULL,
    partition_key  TEXT NOT NULL DEFAULT '',
    tree_size      INTEGER NOT NULL CHECK (tree_size >= 1),
    witness_key_id TEXT NOT NULL,
    signature_line TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, partition_key, tree_size, witness_key_id)
) STRICT;
CREATE INDEX chain_cosignatures_by_witness ON chain_cosignatures (tenant_id, partition_key, witness_key_id, tree_size);

-- +goose Down
DROP TABLE chain_cosignatures;
