-- +goose Up
-- Usage records already counted, by organization and record id: a record sent again,
-- even outside the stream's duplicate window, is counted once.
CREATE TABLE usage_counted (
    organization_id text NOT NULL,
    record_id       text NOT NULL,
    PRIMARY KEY (organization_id, record_id)
);

-- Costs by hour of the call, exactly: integers per currency, summed as numeric so
-- that no total overflows. One row per (workspace, hour, credential, resource,
-- currency); days, months and groupings are sums of these rows.
CREATE TABLE costs_hourly (
    organization_id text        NOT NULL,
    workspace_id    text        NOT NULL,
    hour            timestamptz NOT NULL,
    credential_id   text        NOT NULL,
    billing_kind    text        NOT NULL, -- workspace (an API key) or account (an access key)
    account_id      text,                 -- the account of an access key
    resource        text        NOT NULL,
    currency        text        NOT NULL,
    cost_micros     numeric(38, 0) NOT NULL,
    records         bigint      NOT NULL,
    PRIMARY KEY (workspace_id, hour, credential_id, resource, currency)
);
CREATE INDEX costs_hourly_by_org ON costs_hourly (organization_id, hour);
CREATE INDEX costs_hourly_by_account ON costs_hourly (account_id, hour) WHERE account_id IS NOT NULL;

-- +goose Down
DROP TABLE costs_hourly;
DROP TABLE usage_counted;
