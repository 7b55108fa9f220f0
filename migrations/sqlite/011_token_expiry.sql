-- SQLite mirror of postgres/011_token_expiry.sql.

-- +goose Up
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;

-- +goose Down
ALTER TABLE api_tokens DROP COLUMN expires_at;
