-- +goose Up
-- Who created each API key, account, access key and role, and who changed it last
-- (account ids, from ce-actor). The views are emptied and the views projector's
-- checkpoint dropped, so it rebuilds them from the log with the columns filled.
ALTER TABLE api_keys ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN updated_by text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN updated_by text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN access_key_created_by text;
ALTER TABLE accounts ADD COLUMN access_key_updated_by text;
ALTER TABLE roles ADD COLUMN created_by text NOT NULL DEFAULT '';
ALTER TABLE roles ADD COLUMN updated_by text NOT NULL DEFAULT '';
TRUNCATE accounts, workspaces, workspace_members, api_keys, roles, role_permissions, role_users;
DELETE FROM projection_checkpoints WHERE name = 'views';

-- +goose Down
ALTER TABLE roles DROP COLUMN updated_by;
ALTER TABLE roles DROP COLUMN created_by;
ALTER TABLE accounts DROP COLUMN access_key_updated_by;
ALTER TABLE accounts DROP COLUMN access_key_created_by;
ALTER TABLE accounts DROP COLUMN updated_by;
ALTER TABLE accounts DROP COLUMN created_by;
ALTER TABLE api_keys DROP COLUMN updated_by;
ALTER TABLE api_keys DROP COLUMN created_by;
