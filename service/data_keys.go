package service

import (
	"context"
	"errors"
	"fmt"
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

// checkDataKeys follows the log's key creations and deletions, one instance at a
// time, from where the last check stopped, a grace after each event (longer than
// any creation lasts). A creation writes its data keys while it appends, so an
// instance that dies between the two can leave a key without its data key: the
// check, on whichever instance runs it next, has it deleted (commands.RepairDataKey).
// A deletion's data key is destroyed again (a restore at that moment cannot bring
// it back).
//
// It never deletes on a guess: a vault or log that does not answer stops the check,
// which starts again from its checkpoint; a first run starts at the log's end (keys
// created before were answered only once their data keys were stored) and plants a
// canary in the vault; a vault without its canary (emptied or recreated) stops the
// check for good, holding its lock, as do more lost keys in a row than one
// instance's creations could leave; a creation older than dataKeyCheckMaxAge is not
// judged (the check was down that long).
func checkDataKeys(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, app *commands.App, grace time.Duration, logger *slog.Logger) error {
	logger = logger.With("check", "data keys")
	return follow.Retry(ctx, 2*time.Second, logger, "data key check", func(ctx context.Context) error {
		lock, held, err := projections.TryLock(ctx, pool, "keyledger."+dataKeyCheck)
		if err != nil || !held {
			return err // not held: another instance checks
		}
		defer lock.Release(ctx)
		from, err := projections.Checkpoint(ctx, pool, dataKeyCheck)
		if err == nil && from == 0 {
			if err = app.PlantDataKeyCanary(ctx); err == nil {
				if from, err = store.Position(ctx); err == nil {
					err = projections.SaveCheckpoint(ctx, pool, dataKeyCheck, from)
				}
			}
		}
		if err != nil {
			return err
		}
		lostInARow := 0
		lastPing := time.Now()
		return follow.Follower{Log: workspaceEvents{store}, BatchSize: 256,
			Apply: func(ctx context.Context, recs []eventstore.Record) error {
				for _, r := range recs {
					var err error
					switch e := r.Event.(type) {
					case domain.APIKeyCreated:
						if err = after(ctx, r.Time.Add(grace)); err != nil || time.Since(r.Time) > dataKeyCheckMaxAge {
							break
						}
						var deleted bool
						if deleted, err = app.RepairDataKey(ctx, r.Aggregate, e.KeyID); deleted {
							lostInARow++
							logger.Warn("an API key whose data key was lost (its creation died before storing it) is deleted",
								"workspace_id", r.Aggregate, "key_id", e.KeyID)
						} else if err == nil {
							lostInARow = 0
						}
						if lostInARow > maxLostInARow {
							err = fmt.Errorf("%d API keys in a row had lost their data keys: %w", lostInARow, commands.ErrVaultNotWhole)
						}
						if errors.Is(err, commands.ErrVaultNotWhole) {
							// Hold the lock, so that no other instance goes on; an operator
							// looks, restores the vault, and restarts the instance.
							logger.Error("the data key check stopped", "err", err)
							<-ctx.Done()
							return ctx.Err()
						}
					case domain.APIKeyDeleted:
						if err = after(ctx, r.Time.Add(grace)); err == nil {
							err = app.ShredDeletedKey(ctx, e.KeyID)
						}
					}
					if err != nil {
						return err
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

// dataKeyCheckMaxAge: a creation older than this when the check reaches it is not
// judged.
const dataKeyCheckMaxAge = time.Hour

// maxLostInARow is more keys than the creations in flight on one instance hold.
const maxLostInARow = 2 * domain.MaxEventsPerWrite

// after waits until t, or ctx ends.
func after(ctx context.Context, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t)):
		return nil
	}
}

// workspaceEvents is the log as the data key check follows it: the workspaces'
// events only.
type workspaceEvents struct{ store *eventstore.Store }

func (w workspaceEvents) Subscribe(ctx context.Context, from uint64, _ ...string) (*eventstore.Subscription, error) {
	return w.store.Subscribe(ctx, from, eventstore.Subject(domain.AggregateWorkspace, "*"))
}
