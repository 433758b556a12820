-- +goose Up
-- The log position of the event that authorized each direct membership: a write
-- that replaces an account's set of workspaces checks, once the views reach its
-- own position, that no membership outside the set was authorized before it. NULL
-- is unknown: the rows from before this column, which that write read in the first
-- place, and, during a rolling update, the rows an instance of an older version
-- projects, which it does not take for older than itself.
ALTER TABLE workspace_members ADD COLUMN position bigint;

-- +goose Down
ALTER TABLE workspace_members DROP COLUMN position;
