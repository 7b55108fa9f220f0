-- How far the leader's periodic, incremental verification has checked
-- each chain (docs/audit.md, "Periodic verification"). One row a chain.
--
-- verified_size entries (chain_pos 0 .. verified_size - 1) have been
-- checked; the next round reads only the entries after them and joins the
-- first one to this row: its prev_link must be verified_link, its t_hlc
-- after verified_t_hlc, and the Merkle tree continued from tree_edge (the
-- hashes of the complete subtrees along the right edge of the tree of the
-- first verified_size leaves, largest first, 32 bytes each) must give the
-- root a signed checkpoint states. A round that finds an issue does not
-- move verified_size: the next round reads the same entries again and
-- reports the issue again, until the chain is repaired.
--
-- The last_* columns describe the latest round, whatever it found. The
-- table is not part of the chain: it only saves work, and deleting a row
-- makes the next round verify that chain from its genesis.

-- +goose Up
CREATE TABLE scheduler.chain_verification (
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    verified_size    BIGINT NOT NULL CHECK (verified_size >= 0),
    verified_link    BYTEA CHECK (verified_link IS NULL OR length(verified_link) = 32),
    verified_t_hlc   TEXT COLLATE "C",
    tree_edge        BYTEA NOT NULL DEFAULT '\x'::bytea CHECK (length(tree_edge) % 32 = 0),
    checkpoint_size  BIGINT NOT NULL DEFAULT 0,   -- the largest signed checkpoint found to match
    last_run_at      TIMESTAMPTZ NOT NULL,
    last_valid       BOOLEAN NOT NULL,
    last_entries     BIGINT NOT NULL,             -- entries the latest round read
    last_issue_count BIGINT NOT NULL,
    last_issues      JSONB NOT NULL,              -- its first issues, as audit.Issue JSON
    PRIMARY KEY (tenant_id, partition_key),
    CHECK ((verified_size = 0) = (verified_link IS NULL)),
    CHECK ((verified_size = 0) = (verified_t_hlc IS NULL))
);

-- +goose Down
DROP TABLE scheduler.chain_verification;
