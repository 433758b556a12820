-- +goose Up
-- The access key a rotation replaced, working until previous_until. No earlier
-- event fills it, so no rebuild is needed.
ALTER TABLE accounts ADD COLUMN previous_access_key_id text;
ALTER TABLE accounts ADD COLUMN previous_until timestamptz;

-- +goose Down
ALTER TABLE accounts DROP COLUMN previous_until;
ALTER TABLE accounts DROP COLUMN previous_access_key_id;
