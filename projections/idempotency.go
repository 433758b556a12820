package projections

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/fault"
)

// Idempotency keeps command results by (scope, Idempotency-Key) for 24 hours. A claim
// whose request never completed (the instance died) may be taken over after a minute.
type Idempotency struct{ Pool *pgxpool.Pool }

// Claim implements commands.IdempotencyStore.
func (s Idempotency) Claim(ctx context.Context, scope, key, fingerprint string) (*commands.IdempotencyRecord, error) {
	tag, err := s.Pool.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, result = NULL, created_at = now()
		WHERE idempotency_keys.created_at < now() - interval '24 hours'
		   OR (idempotency_keys.result IS NULL AND idempotency_keys.created_at < now() - interval '1 minute')`,
		scope, key, fingerprint)
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	if tag.RowsAffected() == 1 {
		return nil, nil
	}
	var rec commands.IdempotencyRecord
	err = s.Pool.QueryRow(ctx, `SELECT fingerprint, result FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&rec.Fingerprint, &rec.Result)
	if errors.Is(err, pgx.ErrNoRows) { // released meanwhile: try again
		return s.Claim(ctx, scope, key, fingerprint)
	}
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	return &rec, nil
}

// Complete implements commands.IdempotencyStore.
func (s Idempotency) Complete(ctx context.Context, scope, key string, result []byte) error {
	_, err := s.Pool.Exec(ctx, `UPDATE idempotency_keys SET result = $3 WHERE scope = $1 AND key = $2`, scope, key, result)
	return fault.Unavailable(err)
}

// Release implements commands.IdempotencyStore.
func (s Idempotency) Release(ctx context.Context, scope, key string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND result IS NULL`, scope, key)
	return fault.Unavailable(err)
}
