-- Leadership leases: which node runs a cluster-wide duty (rescuing expired
-- leases, enqueuing periodic jobs, checkpointing) at a time. A row-based
-- lease instead of a session advisory lock, so it works behind PgBouncer
-- in transaction mode.

-- +goose Up
CREATE TABLE scheduler.leadership (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE scheduler.leadership;
