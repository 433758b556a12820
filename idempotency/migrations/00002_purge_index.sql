-- +goose Up
-- Records older than 24 hours are purged; this index finds them.
CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (created_at);

-- +goose Down
DROP INDEX IF EXISTS idempotency_keys_by_age;
