-- +goose Up
-- The audit views, kept by the "audit" projector from the events log: one entry per
-- event of an organization's history (a leaf of its Merkle tree), the names the log
-- gave ids (never deleted, so a deleted key keeps its name in the history), the
-- tree's nodes for proofs, its right border for appending, and the latest signed
-- checkpoint.
CREATE TABLE audit_entries (
    organization_id   text        NOT NULL,
    leaf_index        bigint      NOT NULL,
    position          bigint      NOT NULL,
    event_id          text        NOT NULL,
    event_type        text        NOT NULL,
    action            text        NOT NULL,
    at                timestamptz NOT NULL,
    actor_id          text        NOT NULL,
    credential_id     text        NOT NULL,
    source_ip         text        NOT NULL,
    request_id        text        NOT NULL,
    client_request_id text        NOT NULL,
    workspace_id      text        NOT NULL,
    target_kind       text        NOT NULL,
    target_id         text        NOT NULL,
    account_id        text        NOT NULL,
    changes           jsonb       NOT NULL,
    PRIMARY KEY (organization_id, leaf_index)
);
CREATE INDEX audit_entries_by_event ON audit_entries (organization_id, event_id);
CREATE INDEX audit_entries_by_position ON audit_entries (organization_id, position);
CREATE INDEX audit_entries_by_workspace ON audit_entries (organization_id, workspace_id, leaf_index);
CREATE INDEX audit_entries_by_actor ON audit_entries (organization_id, actor_id, leaf_index);
CREATE INDEX audit_entries_by_target ON audit_entries (organization_id, target_id, leaf_index);
CREATE INDEX audit_entries_by_action ON audit_entries (organization_id, action, leaf_index);
CREATE INDEX audit_entries_by_time ON audit_entries (organization_id, at);

CREATE TABLE audit_names (
    organization_id text NOT NULL,
    id              text NOT NULL,
    kind            text NOT NULL,
    name            text NOT NULL,
    PRIMARY KEY (organization_id, id)
);

CREATE TABLE audit_tree_nodes (
    organization_id text     NOT NULL,
    level           smallint NOT NULL,
    node_index      bigint   NOT NULL,
    hash            bytea    NOT NULL,
    PRIMARY KEY (organization_id, level, node_index)
);

CREATE TABLE audit_trees (
    organization_id text    PRIMARY KEY,
    size            bigint  NOT NULL,
    border          bytea[] NOT NULL,
    root            bytea   NOT NULL
);

CREATE TABLE audit_checkpoints (
    organization_id text        PRIMARY KEY,
    size            bigint      NOT NULL,
    root            bytea       NOT NULL,
    note            text        NOT NULL,
    position        bigint      NOT NULL,
    at              timestamptz NOT NULL
);

-- +goose Down
DROP TABLE audit_checkpoints;
DROP TABLE audit_trees;
DROP TABLE audit_tree_nodes;
DROP TABLE audit_names;
DROP TABLE audit_entries;
