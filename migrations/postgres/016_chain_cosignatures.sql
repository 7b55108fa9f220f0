-- Witness cosignatures (C2SP tlog-cosignature) of the signed checkpoints
-- in chain_checkpoints: one row per (chain, tree size, witness key). The
-- checkpointer stores a cosignature only after verifying it with the
-- witness's configured key; it is served appended to the checkpoint's
-- note, as one more signature line. The largest tree_size a witness
-- cosigned for a chain is where the next submission to it starts (its
-- "old" size; a 409 Conflict from the witness corrects it).

-- +goose Up
CREATE TABLE scheduler.chain_cosignatures (
    tenant_id      TEXT NOT NULL,
    partition_key  TEXT NOT NULL DEFAULT '',
    tree_size      BIGINT NOT NULL CHECK (tree_size >= 1),
    witness_key_id TEXT NOT NULL,            -- <name>+<hash> of the witness's verifier key
    signature_line TEXT NOT NULL,            -- "— <name> <base64>", without the newline
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, partition_key, tree_size, witness_key_id)
);
CREATE INDEX chain_cosignatures_by_witness ON scheduler.chain_cosignatures (tenant_id, partition_key, witness_key_id, tree_size);

-- +goose Down
DROP TABLE scheduler.chain_cosignatures;
