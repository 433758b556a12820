-- +goose Up
ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'enabled';
ALTER TABLE accounts ADD COLUMN access_key_status text;
ALTER TABLE accounts ADD COLUMN access_key_created_at timestamptz;

CREATE TABLE roles (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    name            text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX roles_by_org ON roles (organization_id, id);

CREATE TABLE role_permissions (
    role_id    text NOT NULL,
    permission text NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE role_users (
    role_id    text NOT NULL,
    account_id text NOT NULL,
    PRIMARY KEY (role_id, account_id)
);
CREATE INDEX role_users_by_account ON role_users (account_id);

-- +goose Down
DROP TABLE role_users;
DROP TABLE role_permissions;
DROP TABLE roles;
ALTER TABLE accounts DROP COLUMN access_key_created_at;
ALTER TABLE accounts DROP COLUMN access_key_status;
ALTER TABLE accounts DROP COLUMN status;
