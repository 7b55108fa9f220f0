-- SQLite mirror of postgres/008_tenant_hlc_unique.sql. SQLite cannot drop
-- a table constraint without rebuilding the table, so here the redundant
-- (tenant_id, t_hlc) index stays beside the constraint's own; this
-- migration only keeps the two backends' versions in step.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
