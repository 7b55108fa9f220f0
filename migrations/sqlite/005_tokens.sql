-- SQLite mirror of postgres/005_tokens.sql.

-- +goose Up
CREATE TABLE api_tokens (
    token_id   TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    tenant_id  TEXT,
    is_admin   INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    name       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CHECK (is_admin = (tenant_id IS NULL))
) STRICT;

-- +goose Down
DROP TABLE api_tokens;
