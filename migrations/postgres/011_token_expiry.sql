-- A token may expire (`ordo token create --expires`; the demo's admin
-- token does): from expires_at on it authenticates nothing, as if revoked.
-- NULL: it never expires.

-- +goose Up
ALTER TABLE scheduler.api_tokens ADD COLUMN expires_at TIMESTAMPTZ;

-- +goose Down
ALTER TABLE scheduler.api_tokens DROP COLUMN expires_at;
