-- +goose Up
-- A claim names its attempt (claimed_at) apart from the request's identity
-- (created_at, from which the ids of what the request creates are derived), and
-- says whether its last attempt ended with an unknown outcome (the events may be in
-- the log): a retry then looks in the log before running again.
ALTER TABLE idempotency_keys ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE idempotency_keys ADD COLUMN state text NOT NULL DEFAULT 'running';

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN state;
ALTER TABLE idempotency_keys DROP COLUMN claimed_at;
