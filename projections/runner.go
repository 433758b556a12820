package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

// View folds events into its tables. Apply must only add to the batch (it runs in the
// projector's transaction) and must give the same result when replayed from scratch.
type View interface {
	Apply(b *Batch, r eventstore.Record)
}

// ViewFunc adapts a function to View.
type ViewFunc func(b *Batch, r eventstore.Record)

// Apply calls f.
func (f ViewFunc) Apply(b *Batch, r eventstore.Record) { f(b, r) }

// RunnerConfig configures a projector runner.
type RunnerConfig struct {
	// Name is the projector's checkpoint and lock name; never change it, or the
	// views are rebuilt from the beginning of the log.
	Name string
	// BatchSize is the most events committed in one transaction (default 5000).
	BatchSize int
	// StandbyRetry is how often a standby instance tries to take the lock (default 2s).
	StandbyRetry time.Duration
	Logger       *slog.Logger
}

// Runner reads the log in order from its checkpoint and commits view changes and the
// checkpoint in one transaction per batch: exactly-once effect from an at-least-once
// stream. A PostgreSQL advisory lock keeps one active runner per name across
// instances. Safe for concurrent use.
type Runner struct {
	cfg   RunnerConfig
	pool  *pgxpool.Pool
	store *eventstore.Store
	views []View

	position atomic.Uint64
	active   atomic.Bool
	mu       sync.Mutex
	moved    chan struct{}
}

// NewRunner returns a runner of the given views.
func NewRunner(pool *pgxpool.Pool, store *eventstore.Store, cfg RunnerConfig, views ...View) *Runner {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 5000
	}
	if cfg.StandbyRetry == 0 {
		cfg.StandbyRetry = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{cfg: cfg, pool: pool, store: store, views: views, moved: make(chan struct{})}
}

// Views is the standard set: accounts (with access keys), roles, workspaces,
// members and API keys.
func Views() []View {
	return []View{ViewFunc(applyAccounts), ViewFunc(applyRoles), ViewFunc(applyWorkspaces), ViewFunc(applyMembers), ViewFunc(applyAPIKeys)}
}

// Run projects until ctx ends: it waits for the lock, then consumes. Errors of a
// dependency are logged and retried; Run returns only ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	for {
		err := r.runOnce(ctx)
		r.active.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			r.cfg.Logger.Warn("projector stopped, retrying", "projector", r.cfg.Name, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.StandbyRetry):
		}
	}
}

func (r *Runner) runOnce(ctx context.Context) error {
	lockConn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer lockConn.Release()
	var locked bool
	if err := lockConn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext($1))`, "keyledger.projector."+r.cfg.Name).Scan(&locked); err != nil {
		return err
	}
	if !locked {
		return nil // another instance projects; stand by
	}
	defer func() {
		_, _ = lockConn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, "keyledger.projector."+r.cfg.Name)
	}()
	r.active.Store(true)
	pos, err := r.readCheckpoint(ctx)
	if err != nil {
		return err
	}
	r.advance(pos)
	sub, err := r.store.Subscribe(ctx, pos)
	if err != nil {
		return err
	}
	defer sub.Stop()
	lastPing := time.Now()
	for {
		recs, err := sub.Next(ctx, r.cfg.BatchSize, time.Second)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := r.commit(ctx, recs); err != nil {
				return err
			}
		}
		if time.Since(lastPing) > 5*time.Second { // still holding the lock?
			if err := lockConn.Ping(ctx); err != nil {
				return fmt.Errorf("lock connection lost: %w", err)
			}
			lastPing = time.Now()
		}
	}
}

func (r *Runner) readCheckpoint(ctx context.Context) (uint64, error) {
	var pos int64
	err := r.pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, r.cfg.Name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fault.Unavailable(err)
	}
	return uint64(pos), nil
}

// commit applies records past the checkpoint and moves it, in one transaction.
func (r *Runner) commit(ctx context.Context, recs []eventstore.Record) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var checkpoint int64
	err = tx.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, r.cfg.Name).Scan(&checkpoint)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var b Batch
	last := uint64(checkpoint)
	for _, rec := range recs {
		if rec.Sequence <= last { // redelivered: already in the views
			continue
		}
		for _, v := range r.views {
			v.Apply(&b, rec)
		}
		last = rec.Sequence
	}
	if last == uint64(checkpoint) {
		return nil
	}
	b.Exec(`INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`, r.cfg.Name, int64(last))
	if err := b.flush(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	r.advance(last)
	return nil
}

func (r *Runner) advance(pos uint64) {
	r.position.Store(pos)
	r.mu.Lock()
	close(r.moved)
	r.moved = make(chan struct{})
	r.mu.Unlock()
}

// Position is the last log position committed to the views, as this instance knows
// it (0 on a standby: use Checkpoint).
func (r *Runner) Position() uint64 { return r.position.Load() }

// Active reports whether this instance holds the projector's lock.
func (r *Runner) Active() bool { return r.active.Load() }

// Checkpoint reads the committed position from PostgreSQL, whoever projects.
func (r *Runner) Checkpoint(ctx context.Context) (uint64, error) { return r.readCheckpoint(ctx) }

// WaitFor blocks until the views include log position pos (read-your-writes), or ctx
// ends. On a standby instance it polls the checkpoint.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	for {
		r.mu.Lock()
		moved := r.moved
		r.mu.Unlock()
		if r.position.Load() >= pos {
			return nil
		}
		if !r.active.Load() {
			cp, err := r.readCheckpoint(ctx)
			if err != nil {
				return err
			}
			if cp >= pos {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		case <-time.After(20 * time.Millisecond):
		}
	}
}
