-- Archived ranges of chains (`ordo log archive`, docs/audit.md, "Sealing
-- and archiving"). One row a range: [start_pos, end_pos) of one chain,
-- written to archive files with a checkpoint signed at end_pos. The
-- ranges of a chain follow one another from its genesis without gaps.
--
-- Once a range's entries are dropped from scheduler_log (dropped_at set),
-- this row is what the database keeps of them: the link and t_hlc of the
-- range's last entry, which the first retained entry must follow, and the
-- right edge of the Merkle tree of the first end_pos leaves (the hashes of
-- its complete subtrees, largest first, 32 bytes each), which continues
-- the tree over the retained entries to the roots later checkpoints sign.
-- The stored tree hashes (chain_tree_hashes) stay: inclusion and
-- consistency proofs still work for the dropped entries, whose content
-- only the archive files hold.

-- +goose Up
CREATE TABLE scheduler.chain_archives (
    tenant_id        TEXT NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    start_pos        BIGINT NOT NULL CHECK (start_pos >= 0),
    end_pos          BIGINT NOT NULL,
    first_prev_link  BYTEA CHECK (length(first_prev_link) = 32),  -- NULL for a range starting at the genesis
    last_link        BYTEA NOT NULL CHECK (length(last_link) = 32),
    last_t_hlc       TEXT COLLATE "C" NOT NULL,
    tree_edge        BYTEA NOT NULL CHECK (length(tree_edge) % 32 = 0),
    root_hash        BYTEA NOT NULL CHECK (length(root_hash) = 32),
    checkpoint       TEXT NOT NULL,      -- the signed note of tree size end_pos
    archived_at      TIMESTAMPTZ NOT NULL,
    dropped_at       TIMESTAMPTZ,
    dropped_entries  BIGINT NOT NULL DEFAULT 0,
    dropped_jobs     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, partition_key, start_pos),
    CHECK (end_pos > start_pos),
    CHECK ((start_pos = 0) = (first_prev_link IS NULL))
);

-- The job ids of dropped entries, with what an enqueue of the same job
-- answers (its t_hlc, link and payload hash): an enqueue, a backfill and
-- an import look job ids up here as in scheduler_log, so a job whose entry
-- was archived and dropped is still not appended to its chain again. A
-- row holds the entry's hashes and t_hlc, not its payload.
CREATE TABLE scheduler.archived_jobs (
    tenant_id     TEXT NOT NULL,
    job_id        UUID NOT NULL,
    partition_key TEXT NOT NULL,
    chain_pos     BIGINT NOT NULL,
    t_hlc         TEXT COLLATE "C" NOT NULL,
    link          BYTEA NOT NULL CHECK (length(link) = 32),
    payload_hash  BYTEA NOT NULL CHECK (length(payload_hash) = 32),
    PRIMARY KEY (job_id, tenant_id)  -- the id first: backfill looks ids up without their tenant
);

-- +goose Down
DROP TABLE scheduler.archived_jobs;
DROP TABLE scheduler.chain_archives;
