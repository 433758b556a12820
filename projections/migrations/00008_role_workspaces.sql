-- +goose Up
-- The workspaces a role authorizes its users on. No earlier event fills it, so no
-- rebuild is needed.
CREATE TABLE role_workspaces (
    role_id      text NOT NULL,
    workspace_id text NOT NULL,
    PRIMARY KEY (role_id, workspace_id)
);
CREATE INDEX role_workspaces_by_workspace ON role_workspaces (workspace_id);

-- +goose Down
DROP TABLE role_workspaces;
