-- +goose Up
-- Requests sent with an Idempotency-Key, by (scope, key): the account that sent it,
-- the fingerprint of its method, path and body, when it was first claimed (the ids
-- of what it creates derive from that), its last attempt (claimed_at), and whether
-- that attempt completed, is running, or ended with an unknown outcome. Never a
-- result nor a secret: a replay reads what the request created from the log.
-- Not a view: it cannot be rebuilt from the log. (Earlier versions created the
-- table with the views, hence IF NOT EXISTS.)
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    result      bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'running';
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS result;

-- +goose Down
DROP TABLE idempotency_keys;
