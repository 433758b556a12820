package projections

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/fault"
)

// Idempotency keeps command results by (scope, Idempotency-Key) for 24 hours. It is
// not a view: it cannot be rebuilt from the log. A claim whose attempt ended with an
// unknown outcome, or whose holder died (no result after a minute), is taken over
// by the next attempt with the same request, which looks in the log first.
type Idempotency struct{ Pool *pgxpool.Pool }

// Claim implements commands.IdempotencyStore.
func (s Idempotency) Claim(ctx context.Context, scope, key, fingerprint string) (commands.Claim, *commands.IdempotencyRecord, error) {
	if _, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2
		AND created_at < now() - interval '24 hours'`, scope, key); err != nil {
		return commands.Claim{}, nil, fault.Unavailable(err)
	}
	var c commands.Claim
	var inserted bool
	err := s.Pool.QueryRow(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE SET claimed_at = now(), state = 'running'
		WHERE idempotency_keys.result IS NULL AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
		  AND (idempotency_keys.state = 'unknown' OR idempotency_keys.claimed_at < now() - interval '1 minute')
		RETURNING created_at, xmax = 0`, scope, key, fingerprint).Scan(&c.CreatedAt, &inserted)
	if err == nil {
		c.TakeOver = !inserted
		return c, nil, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return commands.Claim{}, nil, fault.Unavailable(err)
	}
	var rec commands.IdempotencyRecord
	err = s.Pool.QueryRow(ctx, `SELECT fingerprint, result FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&rec.Fingerprint, &rec.Result)
	if errors.Is(err, pgx.ErrNoRows) { // released meanwhile: try again
		return s.Claim(ctx, scope, key, fingerprint)
	}
	if err != nil {
		return commands.Claim{}, nil, fault.Unavailable(err)
	}
	return commands.Claim{}, &rec, nil
}

// Complete implements commands.IdempotencyStore.
func (s Idempotency) Complete(ctx context.Context, scope, key string, result []byte) error {
	_, err := s.Pool.Exec(ctx, `UPDATE idempotency_keys SET result = $3, state = 'done' WHERE scope = $1 AND key = $2`, scope, key, result)
	return fault.Unavailable(err)
}

// Release implements commands.IdempotencyStore.
func (s Idempotency) Release(ctx context.Context, scope, key string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND result IS NULL`, scope, key)
	return fault.Unavailable(err)
}

// Unknown implements commands.IdempotencyStore.
func (s Idempotency) Unknown(ctx context.Context, scope, key string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'unknown' WHERE scope = $1 AND key = $2 AND result IS NULL`, scope, key)
	return fault.Unavailable(err)
}
