package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Lock is a PostgreSQL session advisory lock held on its own connection: one holder
// across every instance on the database, released when the holder releases it or
// its connection ends (a crashed instance holds nothing).
type Lock struct {
	conn *pgxpool.Conn
	name string
}

// TryLock takes the lock called name if no one holds it; held is false otherwise.
func TryLock(ctx context.Context, pool *pgxpool.Pool, name string) (lock *Lock, held bool, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, name).Scan(&held); err != nil || !held {
		conn.Release()
		return nil, false, err
	}
	return &Lock{conn: conn, name: name}, true, nil
}

// Ping tells whether the lock is still held: its connection answers.
func (l *Lock) Ping(ctx context.Context) error { return l.conn.Ping(ctx) }

// PingEvery is a follower's Between that tells, at most every d, whether the lock is
// still held.
func (l *Lock) PingEvery(d time.Duration) func(context.Context) error {
	return every(d, l.held)
}

func (l *Lock) held(ctx context.Context) error {
	if err := l.Ping(ctx); err != nil {
		return fmt.Errorf("lock connection lost: %w", err)
	}
	return nil
}

// every is check run at most once every d (nil in between); for one goroutine.
func every(d time.Duration, check func(context.Context) error) func(context.Context) error {
	last := time.Now()
	return func(ctx context.Context) error {
		if time.Since(last) < d {
			return nil
		}
		last = time.Now()
		return check(ctx)
	}
}

// Release gives the lock up and returns its connection to the pool; once.
func (l *Lock) Release(ctx context.Context) {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, l.name)
	l.conn.Release()
	l.conn = nil
}
