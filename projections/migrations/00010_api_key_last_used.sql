-- +goose Up
-- When each API key was last allowed, to the minute: written by every instance from
-- its verifications (the greatest time wins), not derived from the log, so the
-- views' rebuilds leave it alone.
CREATE TABLE api_key_last_used (
    key_id       text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE api_key_last_used;
