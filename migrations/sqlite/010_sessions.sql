-- SQLite mirror of postgres/010_sessions.sql.

-- +goose Up
CREATE TABLE dashboard_sessions (
    id_hash    BLOB PRIMARY KEY CHECK (length(id_hash) = 32),
    token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;
CREATE INDEX idx_dashboard_sessions_token ON dashboard_sessions (token_hash, created_at);

-- +goose Down
DROP TABLE dashboard_sessions;
