-- +goose Up
-- The log position of the event that authorized each direct membership: a write
-- that replaces an account's set of workspaces checks, once the views reach its
-- own position, that no membership outside the set was authorized before it.
-- Rows from before this column count as authorized at 0, which they were (before
-- any write that asks).
ALTER TABLE workspace_members ADD COLUMN position bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE workspace_members DROP COLUMN position;
