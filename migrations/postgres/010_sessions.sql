-- The dashboard's sessions, in the database so that any node serves any
-- session and a restart logs nobody out. The cookie holds a random id;
-- only its SHA-256 is stored, with the SHA-256 of the API token the
-- session logged in with (re-checked on every request, so a revoked or
-- removed token ends its sessions) and the CSRF token of its forms.

-- +goose Up
CREATE TABLE scheduler.dashboard_sessions (
    id_hash    BYTEA PRIMARY KEY CHECK (length(id_hash) = 32),
    token_hash BYTEA NOT NULL CHECK (length(token_hash) = 32),
    csrf       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL
);
CREATE INDEX idx_dashboard_sessions_token ON scheduler.dashboard_sessions (token_hash, created_at);

-- +goose Down
DROP TABLE scheduler.dashboard_sessions;
