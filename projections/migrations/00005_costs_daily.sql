-- +goose Up
-- Costs by day of the call: the same cells as costs_hourly, summed by UTC day, kept
-- by the cost projector in the same statement as the hour, so that day and month
-- queries read 24 times fewer rows. Filled from costs_hourly for what is there.
CREATE TABLE costs_daily (
    organization_id text        NOT NULL,
    workspace_id    text        NOT NULL,
    day             timestamptz NOT NULL,
    credential_id   text        NOT NULL,
    billing_kind    text        NOT NULL,
    account_id      text,
    resource        text        NOT NULL,
    currency        text        NOT NULL,
    cost_micros     numeric(38, 0) NOT NULL,
    records         bigint      NOT NULL,
    PRIMARY KEY (workspace_id, day, credential_id, resource, currency)
);
CREATE INDEX costs_daily_by_org ON costs_daily (organization_id, day);
CREATE INDEX costs_daily_by_account ON costs_daily (account_id, day) WHERE account_id IS NOT NULL;

INSERT INTO costs_daily (organization_id, workspace_id, day, credential_id, billing_kind, account_id, resource, currency, cost_micros, records)
SELECT organization_id, workspace_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', credential_id,
       min(billing_kind), min(account_id), resource, currency, sum(cost_micros), sum(records)
FROM costs_hourly
GROUP BY organization_id, workspace_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', credential_id, resource, currency;

-- +goose Down
DROP TABLE costs_daily;
