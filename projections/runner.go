package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections/follow"
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

// Loader is a view that keeps state in memory between batches (the audit trees'
// right borders): the runner calls Load with the database as committed before it
// applies its first batch, and again whenever it starts over after an error, so
// what a failed transaction applied in memory is dropped with it.
type Loader interface {
	Load(ctx context.Context, db Querier) error
}

// Querier is what a Loader reads the database with.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// RunnerConfig configures a projector runner.
type RunnerConfig struct {
	// Name is the projector's checkpoint and lock name; never change it, or the
	// views are rebuilt from the beginning of the log.
	Name string
	// BatchSize is the most events committed in one transaction (default 5000),
	// save the rest of an atomic append begun within it (up to 999 more).
	BatchSize int
	// StandbyRetry is how often a standby instance tries to take the lock (default 2s).
	StandbyRetry time.Duration
	// CheckEvery is how often an active runner checks it still holds the lock and
	// the schema is not a newer version's (default 5s).
	CheckEvery time.Duration
	// MaxLag is the lag (events behind the log) past which the views are reported as
	// lagging (default 10000).
	MaxLag uint64
	Logger *slog.Logger
}

// Validate joins every problem.
func (c RunnerConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("projector: a name is required (it names the checkpoint and the lock)"))
	}
	if c.BatchSize < 0 || c.StandbyRetry < 0 || c.CheckEvery < 0 {
		errs = append(errs, errors.New("projector: the batch size, the standby retry and the check interval must not be negative"))
	}
	return errors.Join(errs...)
}

// Runner reads the log in order from its checkpoint and commits view changes and the
// checkpoint in one transaction per batch: exactly-once effect from an at-least-once
// stream. A PostgreSQL advisory lock keeps one active runner per name across
// instances. Safe for concurrent use.
type Runner struct {
	cfg   RunnerConfig
	pool  *pgxpool.Pool
	log   follow.Log
	views []View

	position follow.Position
	active   atomic.Bool
	behind   bool // under a newer version's schema, said once (Run's goroutine only)
}

// NewRunner returns a runner of the given views.
func NewRunner(pool *pgxpool.Pool, log follow.Log, cfg RunnerConfig, views ...View) *Runner {
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 5000
	}
	if cfg.StandbyRetry == 0 {
		cfg.StandbyRetry = 2 * time.Second
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = 5 * time.Second
	}
	if cfg.MaxLag == 0 {
		cfg.MaxLag = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{cfg: cfg, pool: pool, log: log, views: views}
}

// Views is the standard set: accounts (with access keys), roles, workspaces,
// members and API keys.
func Views() []View {
	return []View{ViewFunc(applyAccounts), ViewFunc(applyRoles), ViewFunc(applyWorkspaces), ViewFunc(applyMembers), ViewFunc(applyAPIKeys)}
}

// Run projects until ctx ends: it waits for the lock, then consumes. Errors of a
// dependency are logged and retried; Run returns only ctx's error. Under a schema
// a newer version migrated (SchemaAhead) it stands by, and an active runner gives
// the lock up within CheckEvery of the migration (its writes in between are not
// prevented: a migration must not rely on the older version's having stopped).
func (r *Runner) Run(ctx context.Context) error {
	return follow.Retry(ctx, r.cfg.StandbyRetry, r.cfg.Logger.With("projector", r.cfg.Name), "projector", func(ctx context.Context) error {
		defer r.active.Store(false)
		return r.runOnce(ctx)
	})
}

func (r *Runner) runOnce(ctx context.Context) error {
	if err := SchemaAhead(ctx, r.pool); errors.Is(err, ErrSchemaAhead) {
		if !r.behind { // said once: it stands by for the whole rolling update
			r.cfg.Logger.Info("projector standing by: a newer version projects", "projector", r.cfg.Name, "reason", err)
			r.behind = true
		}
		return nil
	} else if err != nil {
		return err
	}
	r.behind = false
	lock, locked, err := TryLock(ctx, r.pool, "keyledger.projector."+r.cfg.Name)
	if err != nil || !locked {
		return err // not locked: another instance projects; stand by
	}
	defer lock.Release(ctx)
	r.active.Store(true)
	pos, err := Checkpoint(ctx, r.pool, r.cfg.Name)
	if err != nil {
		return err
	}
	r.position.Advance(pos)
	for _, v := range r.views {
		if l, ok := v.(Loader); ok {
			if err := l.Load(ctx, r.pool); err != nil {
				return fault.Unavailable(fmt.Errorf("projector %s: load: %w", r.cfg.Name, err))
			}
		}
	}
	w := &writer{r: r, folded: pos}
	defer w.wait() // before the lock is released: no write outlives its holder
	check := every(r.cfg.CheckEvery, func(ctx context.Context) error {
		if err := lock.held(ctx); err != nil {
			return err
		}
		return SchemaAhead(ctx, r.pool)
	})
	return follow.Follower{Log: r.log, BatchSize: r.cfg.BatchSize, Apply: w.apply, Between: func(ctx context.Context) error {
		if err := w.poll(); err != nil {
			return err
		}
		return check(ctx)
	}}.Run(ctx, pos)
}

// Checkpoint is how far the log's consumer called name has applied it (0: not at all).
func Checkpoint(ctx context.Context, pool *pgxpool.Pool, name string) (uint64, error) {
	pos, _, err := CheckpointOf(ctx, pool, name)
	return pos, err
}

// CheckpointOf is Checkpoint, and whether the consumer has one at all (a consumer
// that starts somewhere else than the log's beginning when it has none).
func CheckpointOf(ctx context.Context, pool *pgxpool.Pool, name string) (uint64, bool, error) {
	var pos int64
	err := pool.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fault.Unavailable(err)
	}
	return uint64(pos), true, nil
}

// SaveCheckpoint records that the consumer called name has applied the log up to pos
// (a consumer whose work is outside the database; the projector moves its own in
// its transaction).
func SaveCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string, pos uint64) error {
	_, err := pool.Exec(ctx, checkpointUpsert, name, int64(pos))
	if err != nil {
		return fault.Unavailable(err)
	}
	return nil
}

const checkpointUpsert = `INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`

// writer folds each batch of records into view changes and commits them, with the
// checkpoint, in the background: while one batch is written, the follower reads
// and folds the next (PostgreSQL would otherwise wait for it). One batch at most is
// in flight, and batches commit in log order; a failed write ends the run at the
// next batch or the next check between batches, and the runner starts over from
// the checkpoint (Loader views reload what the lost batches folded in memory).
type writer struct {
	r      *Runner
	folded uint64     // the last record folded into a batch
	done   chan error // the batch in flight's outcome; nil when none
}

// apply folds the records past the last folded one (a record at or before it is a
// redelivery, skipped) and hands the batch to be written once the one in flight
// is.
func (w *writer) apply(ctx context.Context, recs []eventstore.Record) error {
	from := w.folded
	b := Batch{ops: make([]op, 0, len(recs))} // most events are one operation
	last := from
	for _, rec := range recs {
		if rec.Sequence <= last { // redelivered: already in the views
			continue
		}
		for _, v := range w.r.views {
			v.Apply(&b, rec)
		}
		last = rec.Sequence
	}
	if last == from {
		return nil
	}
	b.seal()
	if err := w.wait(); err != nil {
		return err
	}
	w.folded = last
	done := make(chan error, 1)
	w.done = done
	go func() { done <- w.r.commit(ctx, &b, from, last) }()
	return nil
}

// wait blocks until the batch in flight, if any, is written, and tells how it went.
func (w *writer) wait() error {
	if w.done == nil {
		return nil
	}
	err := <-w.done
	w.done = nil
	return err
}

// poll is wait when the batch in flight is written already, nil otherwise.
func (w *writer) poll() error {
	select {
	case err := <-w.done:
		w.done = nil
		return err
	default:
		return nil
	}
}

// commit writes a batch that moves the views from `from` to `to`, and the
// checkpoint with them, in one transaction. The checkpoint is where this runner left
// it (it holds the lock, and started from it); a checkpoint found elsewhere fails
// the transaction.
func (r *Runner) commit(ctx context.Context, b *Batch, from, to uint64) error {
	if err := b.commit(ctx, r.pool, r.cfg.Name, from, to); err != nil {
		if cp, cerr := Checkpoint(ctx, r.pool, r.cfg.Name); cerr == nil && cp != from {
			// It moved under this runner: back when a migration reset the views to
			// rebuild them, on when another runner projected meanwhile. Start again
			// from it.
			return fmt.Errorf("projector %s: the checkpoint moved from %d to %d", r.cfg.Name, from, cp)
		}
		return err
	}
	r.position.Advance(to)
	return nil
}

// Position is the last log position committed to the views, as this instance knows
// it (0 on a standby: use Checkpoint).
func (r *Runner) Position() uint64 { return r.position.Load() }

// LogEnd tells where the log ends.
type LogEnd interface {
	Position(ctx context.Context) (uint64, error)
}

// Lagging says whether the views, whoever projects them, are more than MaxLag
// events behind the log (for readiness).
func (r *Runner) Lagging(ctx context.Context, log LogEnd) error {
	head, err := log.Position(ctx)
	if err != nil {
		return err
	}
	cp, err := Checkpoint(ctx, r.pool, r.cfg.Name)
	if err != nil {
		return err
	}
	if head > cp && head-cp > r.cfg.MaxLag {
		return fmt.Errorf("views are %d events behind the log", head-cp)
	}
	return nil
}

// CaughtUp blocks until the views include the log as it stands now, or ctx ends.
func (r *Runner) CaughtUp(ctx context.Context, log LogEnd) error {
	head, err := log.Position(ctx)
	if err != nil {
		return err
	}
	return r.WaitFor(ctx, head)
}

// WaitFor blocks until the views include log position pos (read-your-writes), or ctx
// ends. On a standby instance it polls the checkpoint.
func (r *Runner) WaitFor(ctx context.Context, pos uint64) error {
	return r.position.WaitFor(ctx, pos, func(ctx context.Context) (uint64, error) {
		if r.active.Load() {
			return r.position.Load(), nil
		}
		return Checkpoint(ctx, r.pool, r.cfg.Name)
	})
}
