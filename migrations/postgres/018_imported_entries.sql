-- Entries merged from an offline node's bundle (`ordo jobs import`) keep
-- where they came from: the node, and the entry's t_hlc, prev_link and
-- link in the offline chain, so that chain can be checked against the
-- central one. NULL for entries appended here. Not covered by any hash:
-- the central entry's own link binds its central fields as for any other.

-- +goose Up
ALTER TABLE scheduler.scheduler_log ADD COLUMN source_node TEXT;
ALTER TABLE scheduler.scheduler_log ADD COLUMN source_t_hlc TEXT COLLATE "C";
ALTER TABLE scheduler.scheduler_log ADD COLUMN source_prev_link BYTEA;
ALTER TABLE scheduler.scheduler_log ADD COLUMN source_link BYTEA;

-- +goose Down
ALTER TABLE scheduler.scheduler_log DROP COLUMN source_link;
ALTER TABLE scheduler.scheduler_log DROP COLUMN source_prev_link;
ALTER TABLE scheduler.scheduler_log DROP COLUMN source_t_hlc;
ALTER TABLE scheduler.scheduler_log DROP COLUMN source_node;
