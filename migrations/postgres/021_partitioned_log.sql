-- scheduler_log becomes a declaratively partitioned table, PARTITION BY
-- RANGE (t_hlc), so that dropping archived history (`ordo log archive
-- --drop`, driver.LogArchive.DropArchived) can detach and drop a
-- partition whole instead of deleting its rows one by one (a large DELETE
-- writes WAL for every row and leaves the table to vacuum). The table
-- keeps its name, every column, seq_bigint as storage order (still fed by
-- scheduler_log_seq_bigint_seq, owned by the column: BIGSERIAL), and the
-- guide's index idx_scheduler_log_tenant_hlc, still the unique constraint
-- on (tenant_id, t_hlc, partition_key, job_id) of migration 008.
--
-- t_hlc is canonical HLC text (COLLATE "C"), whose first field is the
-- physical time in zero-padded milliseconds (hlc/timestamp.go), so the
-- 13-digit text of a period's first millisecond sorts before every t_hlc
-- of that period and after every t_hlc before it: partition bounds are
-- such texts. store/postgres/partitions.go creates the partitions of
-- coming periods (Ordo:Database:LogPartitionPeriod), each named by its
-- start, scheduler_log_pYYYYMMDD; a DEFAULT partition takes whatever no
-- partition covers, so an insert never fails for want of a partition.
--
-- What had to change:
--   * A partitioned table's primary key and unique constraints must
--     contain the partition column. seq_bigint is no longer the primary
--     key (it was storage order only; nothing looks a row up by it): the
--     table's key is the guide's unique constraint, which contains t_hlc.
--     This also pays the scheduler_log_pkey debt of docs/scaling.md: every
--     unique key of scheduler_log now contains tenant_id.
--   * idx_scheduler_log_chain, UNIQUE (tenant_id, partition_key,
--     chain_pos), cannot be a unique index of the partitioned table (no
--     t_hlc). It is created on each partition instead, as
--     idx_scheduler_log_chain_<partition>, unique within it. That is
--     enough: a chain is appended under its head's lock, in t_hlc order,
--     each entry at the position after its predecessor, so two entries of
--     one chain at one position could only come from a writer that
--     bypasses the head, and the verifier (audit.Verify) checks every
--     chain's positions and links whatever the indexes say.
--   * idx_scheduler_log_job and idx_scheduler_log_periodic (013) become
--     partitioned indexes: each partition has its own, named after the
--     parent's with the partition's suffix, so EXPLAIN still names the
--     guide's index (idx_scheduler_log_tenant_hlc_<partition>).
--
-- Existing rows are not copied: the table as it is becomes the first
-- partition, scheduler_log_initial, FROM (MINVALUE) TO the first UTC
-- midnight that is both an hour after the migration and after the latest
-- t_hlc the log holds (found through idx_scheduler_log_tenant_hlc, one
-- probe per tenant). Attaching it reads the table once to check the bound
-- (a sequential read, no write); its indexes are kept, renamed, and
-- become the partition's part of the parent's.

-- +goose Up
ALTER TABLE scheduler.scheduler_log RENAME TO scheduler_log_initial;
ALTER TABLE scheduler.scheduler_log_initial DROP CONSTRAINT scheduler_log_pkey;
ALTER TABLE scheduler.scheduler_log_initial RENAME CONSTRAINT idx_scheduler_log_tenant_hlc TO idx_scheduler_log_tenant_hlc_initial;
ALTER INDEX scheduler.idx_scheduler_log_chain RENAME TO idx_scheduler_log_chain_initial;
ALTER INDEX scheduler.idx_scheduler_log_job RENAME TO idx_scheduler_log_job_initial;
ALTER INDEX scheduler.idx_scheduler_log_periodic RENAME TO idx_scheduler_log_periodic_initial;

-- The same columns, in the same order, with the same constraint names
-- (a partition must have every CHECK constraint of its parent, by name).
CREATE TABLE scheduler.scheduler_log (
    seq_bigint       BIGINT NOT NULL DEFAULT nextval('scheduler.scheduler_log_seq_bigint_seq'), -- storage order, not authoritative
    tenant_id        TEXT NOT NULL,
    t_hlc            TEXT COLLATE "C" NOT NULL,
    partition_key    TEXT NOT NULL DEFAULT '',
    job_id           UUID NOT NULL,
    payload_hash     BYTEA NOT NULL CONSTRAINT scheduler_log_payload_hash_check CHECK (length(payload_hash) = 32),
    prev_link        BYTEA CONSTRAINT scheduler_log_prev_link_check CHECK (length(prev_link) = 32),
    link             BYTEA NOT NULL CONSTRAINT scheduler_log_link_check CHECK (length(link) = 32),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    chain_pos        BIGINT NOT NULL CONSTRAINT scheduler_log_chain_pos_check CHECK (chain_pos >= 0),
    node_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CONSTRAINT scheduler_log_max_attempts_check CHECK (max_attempts >= 1),
    run_at           TIMESTAMPTZ NOT NULL,
    idempotency_key  TEXT,
    source_node      TEXT,
    source_t_hlc     TEXT COLLATE "C",
    source_prev_link BYTEA,
    source_link      BYTEA,
    CONSTRAINT idx_scheduler_log_tenant_hlc UNIQUE (tenant_id, t_hlc, partition_key, job_id)
) PARTITION BY RANGE (t_hlc);
ALTER SEQUENCE scheduler.scheduler_log_seq_bigint_seq OWNED BY scheduler.scheduler_log.seq_bigint;
CREATE INDEX idx_scheduler_log_job ON scheduler.scheduler_log (job_id);
CREATE INDEX idx_scheduler_log_periodic ON scheduler.scheduler_log (tenant_id, idempotency_key COLLATE "C")
    WHERE idempotency_key LIKE 'ordo.periodic:%';

-- +goose StatementBegin
DO $$
DECLARE
    latest TEXT;
    bound  BIGINT;
BEGIN
    -- The latest t_hlc of each tenant is the last entry of its part of
    -- idx_scheduler_log_tenant_hlc: a loose index scan over the tenants.
    WITH RECURSIVE tenants(tenant_id) AS (
        SELECT min(tenant_id) FROM scheduler.scheduler_log_initial
        UNION ALL
        SELECT (SELECT min(l.tenant_id) FROM scheduler.scheduler_log_initial l WHERE l.tenant_id > t.tenant_id)
        FROM tenants t WHERE t.tenant_id IS NOT NULL
    )
    SELECT max((SELECT max(l.t_hlc) FROM scheduler.scheduler_log_initial l WHERE l.tenant_id = t.tenant_id))
    INTO latest FROM tenants t WHERE t.tenant_id IS NOT NULL;
    IF latest IS NOT NULL AND latest !~ '^[0-9]{13}-' THEN
        RAISE EXCEPTION 'scheduler_log holds t_hlc %, which is not canonical HLC text', latest;
    END IF;
    bound := greatest((extract(epoch FROM now()) * 1000)::BIGINT + 3600000, coalesce(left(latest, 13)::BIGINT + 1, 0));
    bound := (bound / 86400000 + 1) * 86400000;
    EXECUTE format('ALTER TABLE scheduler.scheduler_log ATTACH PARTITION scheduler.scheduler_log_initial FOR VALUES FROM (MINVALUE) TO (%L)',
        lpad(bound::TEXT, 13, '0'));
END
$$;
-- +goose StatementEnd

-- Whatever no partition covers; kept empty in normal operation (the
-- partitions of coming periods are made ahead), so attaching a new one,
-- which checks it, reads nothing.
CREATE TABLE scheduler.scheduler_log_default (LIKE scheduler.scheduler_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE scheduler.scheduler_log_default ADD CONSTRAINT idx_scheduler_log_tenant_hlc_default
    UNIQUE (tenant_id, t_hlc, partition_key, job_id);
CREATE UNIQUE INDEX idx_scheduler_log_chain_default ON scheduler.scheduler_log_default (tenant_id, partition_key, chain_pos);
CREATE INDEX idx_scheduler_log_job_default ON scheduler.scheduler_log_default (job_id);
CREATE INDEX idx_scheduler_log_periodic_default ON scheduler.scheduler_log_default (tenant_id, idempotency_key COLLATE "C")
    WHERE idempotency_key LIKE 'ordo.periodic:%';
ALTER TABLE scheduler.scheduler_log ATTACH PARTITION scheduler.scheduler_log_default DEFAULT;

-- +goose Down
-- Back to one table: the first partition, detached, takes the rows of the
-- others (copied: there is no other way back), its old name and its keys.
-- If it was dropped (all of its rows archived), the default partition
-- takes its place.
-- +goose StatementBegin
DO $$
BEGIN
    IF to_regclass('scheduler.scheduler_log_initial') IS NOT NULL THEN
        ALTER TABLE scheduler.scheduler_log DETACH PARTITION scheduler.scheduler_log_initial;
    ELSIF to_regclass('scheduler.scheduler_log_default') IS NOT NULL THEN
        ALTER TABLE scheduler.scheduler_log DETACH PARTITION scheduler.scheduler_log_default;
        ALTER TABLE scheduler.scheduler_log_default RENAME TO scheduler_log_initial;
        ALTER TABLE scheduler.scheduler_log_initial RENAME CONSTRAINT idx_scheduler_log_tenant_hlc_default TO idx_scheduler_log_tenant_hlc_initial;
        ALTER INDEX scheduler.idx_scheduler_log_chain_default RENAME TO idx_scheduler_log_chain_initial;
        ALTER INDEX scheduler.idx_scheduler_log_job_default RENAME TO idx_scheduler_log_job_initial;
        ALTER INDEX scheduler.idx_scheduler_log_periodic_default RENAME TO idx_scheduler_log_periodic_initial;
    ELSE
        RAISE EXCEPTION 'scheduler_log has neither its first partition nor its default one: nothing to make the unpartitioned table of';
    END IF;
END
$$;
-- +goose StatementEnd
INSERT INTO scheduler.scheduler_log_initial (seq_bigint, tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link,
        created_at, chain_pos, node_id, kind, payload, priority, max_attempts, run_at, idempotency_key,
        source_node, source_t_hlc, source_prev_link, source_link)
    SELECT seq_bigint, tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link,
        created_at, chain_pos, node_id, kind, payload, priority, max_attempts, run_at, idempotency_key,
        source_node, source_t_hlc, source_prev_link, source_link
    FROM scheduler.scheduler_log;
ALTER SEQUENCE scheduler.scheduler_log_seq_bigint_seq OWNED BY scheduler.scheduler_log_initial.seq_bigint;
DROP TABLE scheduler.scheduler_log;
ALTER TABLE scheduler.scheduler_log_initial RENAME TO scheduler_log;
ALTER TABLE scheduler.scheduler_log RENAME CONSTRAINT idx_scheduler_log_tenant_hlc_initial TO idx_scheduler_log_tenant_hlc;
ALTER INDEX scheduler.idx_scheduler_log_chain_initial RENAME TO idx_scheduler_log_chain;
ALTER INDEX scheduler.idx_scheduler_log_job_initial RENAME TO idx_scheduler_log_job;
ALTER INDEX scheduler.idx_scheduler_log_periodic_initial RENAME TO idx_scheduler_log_periodic;
ALTER TABLE scheduler.scheduler_log ADD CONSTRAINT scheduler_log_pkey PRIMARY KEY (seq_bigint);
