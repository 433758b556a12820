-- +goose Up
-- Each resource's own version: the log position of the last event that changed it,
-- which its entity tag hashes. The views are emptied and their checkpoints dropped,
-- so the projectors rebuild them from the log with the new columns filled.
ALTER TABLE workspaces ADD COLUMN members_version bigint NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN updated_at timestamptz;
TRUNCATE accounts, workspaces, workspace_members, api_keys, roles, role_permissions, role_users;
DELETE FROM projection_checkpoints;

-- +goose Down
ALTER TABLE roles DROP COLUMN updated_at;
ALTER TABLE roles DROP COLUMN version;
ALTER TABLE accounts DROP COLUMN version;
ALTER TABLE api_keys DROP COLUMN version;
ALTER TABLE workspaces DROP COLUMN members_version;
