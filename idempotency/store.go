// Package idempotency keeps the requests sent with an Idempotency-Key in
// PostgreSQL: who sent which key with which request, when it was first claimed and
// how its last attempt ended. It is not a view of the log (it cannot be rebuilt
// from it), so it has a package, a migration set and a version table of its own.
package idempotency

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the store's migrations, tracked in a version table of its own.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return projections.MigrateFS(ctx, pool, sub, "keyledger_idempotency_version")
}

// Store keeps requests by (scope, Idempotency-Key) for 24 hours. A claim whose
// attempt ended with an unknown outcome, or whose holder died (no completion after
// a minute), is taken over by the next attempt with the same request, which looks in
// the log first. Each call is bounded by Timeout (default 5s): a stalled PostgreSQL
// is fault.ErrUnavailable, a 503, never a request that is not answered. Safe for
// concurrent use.
type Store struct {
	Pool    *pgxpool.Pool
	Timeout time.Duration
}

// bound is ctx cut at the store's timeout.
func (s Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.Timeout == 0 {
		s.Timeout = 5 * time.Second
	}
	return context.WithTimeout(ctx, s.Timeout)
}

// Claim implements commands.IdempotencyStore.
func (s Store) Claim(ctx context.Context, scope, key, fingerprint string) (commands.Claim, *commands.IdempotencyRecord, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2
		AND created_at < now() - interval '24 hours'`, scope, key); err != nil {
		return commands.Claim{}, nil, fault.Unavailable(err)
	}
	var c commands.Claim
	var inserted bool
	err := s.Pool.QueryRow(ctx, `INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
		ON CONFLICT (scope, key) DO UPDATE SET claimed_at = now(), state = 'running'
		WHERE idempotency_keys.state <> 'done' AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
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
	var state string
	err = s.Pool.QueryRow(ctx, `SELECT fingerprint, created_at, state FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&rec.Fingerprint, &rec.CreatedAt, &state)
	if errors.Is(err, pgx.ErrNoRows) { // released meanwhile: try again
		return s.Claim(ctx, scope, key, fingerprint)
	}
	if err != nil {
		return commands.Claim{}, nil, fault.Unavailable(err)
	}
	rec.Completed = state == "done"
	return commands.Claim{}, &rec, nil
}

// Complete implements commands.IdempotencyStore.
func (s Store) Complete(ctx context.Context, scope, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'done' WHERE scope = $1 AND key = $2`, scope, key)
	return fault.Unavailable(err)
}

// Release implements commands.IdempotencyStore.
func (s Store) Release(ctx context.Context, scope, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state <> 'done'`, scope, key)
	return fault.Unavailable(err)
}

// Unknown implements commands.IdempotencyStore.
func (s Store) Unknown(ctx context.Context, scope, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.Pool.Exec(ctx, `UPDATE idempotency_keys SET state = 'unknown' WHERE scope = $1 AND key = $2 AND state <> 'done'`, scope, key)
	return fault.Unavailable(err)
}

// Purge deletes the records older than 24 hours: their keys are forgotten, and the
// same key starts a new request. It returns how many went.
func (s Store) Purge(ctx context.Context) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'`)
	if err != nil {
		return 0, fault.Unavailable(err)
	}
	return tag.RowsAffected(), nil
}

// Keep purges every interval until ctx ends; a failed purge is logged and tried at
// the next one.
func (s Store) Keep(ctx context.Context, every time.Duration, logger *slog.Logger) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("idempotency: purge failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
