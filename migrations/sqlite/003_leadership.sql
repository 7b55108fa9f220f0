-- SQLite mirror of postgres/003_leadership.sql.

-- +goose Up
CREATE TABLE leadership (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE leadership;
