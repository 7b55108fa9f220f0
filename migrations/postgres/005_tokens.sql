-- Bearer tokens of the HTTP API (`ordo token create|list|revoke`). Only a
-- token's SHA-256 is stored; its text is printed once, when it is created.
-- A token acts for one tenant, or, as an admin token, for every tenant.

-- +goose Up
CREATE TABLE scheduler.api_tokens (
    token_id   TEXT PRIMARY KEY,                -- public id, e.g. tok_3f9a1c2e7b4d
    token_hash BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    tenant_id  TEXT,                            -- NULL for an admin token
    is_admin   BOOLEAN NOT NULL DEFAULT false,
    name       TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at TIMESTAMPTZ,
    CHECK (is_admin = (tenant_id IS NULL))
);

-- +goose Down
DROP TABLE scheduler.api_tokens;
