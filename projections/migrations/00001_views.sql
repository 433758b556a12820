-- +goose Up
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    name            text NOT NULL,
    is_primary      boolean NOT NULL,
    access_key_id   text,
    created_at      timestamptz NOT NULL
);
CREATE INDEX accounts_by_org ON accounts (organization_id, id);

CREATE TABLE workspaces (
    id              text PRIMARY KEY,
    organization_id text NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL
);
CREATE INDEX workspaces_by_org ON workspaces (organization_id, id);

CREATE TABLE workspace_members (
    workspace_id  text NOT NULL,
    account_id    text NOT NULL,
    authorized_at timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, account_id)
);

-- No secret here: only the masked form. The HMAC and the sealed plaintext stay in
-- the log.
CREATE TABLE api_keys (
    id               text PRIMARY KEY,
    workspace_id     text NOT NULL,
    business_type    text NOT NULL,
    name             text,
    allowlist        text[] NOT NULL,
    note             text NOT NULL,
    qps_limit        integer,
    masked_secret    text NOT NULL,
    batch_id         text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_revealed_at timestamptz
);
CREATE INDEX api_keys_by_workspace ON api_keys (workspace_id, business_type, id);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE workspace_members;
DROP TABLE workspaces;
DROP TABLE accounts;
DROP TABLE projection_checkpoints;
