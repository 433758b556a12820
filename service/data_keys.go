package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/follow"
)

// dataKeyCheck names the data key check's lock and checkpoint.
const dataKeyCheck = "data-keys"

// checkDataKeys follows the log's key creations, one instance at a time, from where
// the last check stopped, and has each key whose data key is lost deleted
// (commands.RepairDataKey) once its creation is over: grace after its event. A key
// creation writes its data keys while it appends, so an instance that dies between
// the two can leave a key without its data key; the next check, on whichever
// instance runs it, repairs that at its start. A vault or log that does not answer
// stops the check, which starts again from its checkpoint: nothing is decided on a
// guess.
func checkDataKeys(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, app *commands.App, grace time.Duration, logger *slog.Logger) error {
	logger = logger.With("check", "data keys")
	return follow.Retry(ctx, 2*time.Second, logger, "data key check", func(ctx context.Context) error {
		lock, held, err := projections.TryLock(ctx, pool, "keyledger."+dataKeyCheck)
		if err != nil || !held {
			return err // not held: another instance checks
		}
		defer lock.Release(ctx)
		from, err := projections.Checkpoint(ctx, pool, dataKeyCheck)
		if err != nil {
			return err
		}
		lastPing := time.Now()
		return follow.Follower{Log: workspaceEvents{store}, BatchSize: 256,
			Apply: func(ctx context.Context, recs []eventstore.Record) error {
				for _, r := range recs {
					created, ok := r.Event.(domain.APIKeyCreated)
					if !ok {
						continue
					}
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(time.Until(r.Time.Add(grace))):
					}
					deleted, err := app.RepairDataKey(ctx, r.Aggregate, created.KeyID)
					if err != nil {
						return err
					}
					if deleted {
						logger.Warn("an API key whose data key was lost (its creation died before storing it) is deleted",
							"workspace_id", r.Aggregate, "key_id", created.KeyID)
					}
				}
				return projections.SaveCheckpoint(ctx, pool, dataKeyCheck, recs[len(recs)-1].Sequence)
			},
			Between: func(ctx context.Context) error {
				if time.Since(lastPing) < 5*time.Second {
					return nil
				}
				lastPing = time.Now()
				return lock.Ping(ctx)
			}}.Run(ctx, from)
	})
}

// workspaceEvents is the log as the data key check follows it: the workspaces'
// events only.
type workspaceEvents struct{ store *eventstore.Store }

func (w workspaceEvents) Subscribe(ctx context.Context, from uint64, _ ...string) (*eventstore.Subscription, error) {
	return w.store.Subscribe(ctx, from, eventstore.Subject(domain.AggregateWorkspace, "*"))
}
