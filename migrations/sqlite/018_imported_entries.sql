-- SQLite mirror of postgres/018_imported_entries.sql: where an entry
-- merged from an offline node's bundle came from. NULL for local entries.

-- +goose Up
ALTER TABLE scheduler_log ADD COLUMN source_node TEXT;
ALTER TABLE scheduler_log ADD COLUMN source_t_hlc TEXT;
ALTER TABLE scheduler_log ADD COLUMN source_prev_link BLOB;
ALTER TABLE scheduler_log ADD COLUMN source_link BLOB;

-- +goose Down
ALTER TABLE scheduler_log DROP COLUMN source_link;
ALTER TABLE scheduler_log DROP COLUMN source_prev_link;
ALTER TABLE scheduler_log DROP COLUMN source_t_hlc;
ALTER TABLE scheduler_log DROP COLUMN source_node;
