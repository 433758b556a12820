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
func checkDataKeys(ctx context.Context, pool *pgxpool.Pool, store *eventstore.Store, vault *eventstore.Vault, app *commands.App, grace time.Duration, logger *slog.Logger) error {
	logger = logger.With("check", "data keys")
	return follow.Retry(ctx, 2*time.Second, logger, "data key check", func(ctx context.Context) error {
		lock, held, err := projections.TryLock(ctx, pool, "keyledger."+dataKeyCheck)
		if err != nil || !held {
			return err // not held: another instance checks
		}
		defer lock.Release(ctx)
		from, seeded, err := projections.CheckpointOf(ctx, pool, dataKeyCheck)
		if err == nil && !seeded {
			if err = vault.PlantCanary(ctx); err == nil {
				if from, err = store.Position(ctx); err == nil {
					err = projections.SaveCheckpoint(ctx, pool, dataKeyCheck, from)
				}
			}
		}
		if err != nil {
			return err
		}
		c := &dataKeyChecker{app: app, vault: vault, grace: grace, logger: logger}
		err = follow.Follower{Log: store, BatchSize: 256, Filters: []string{eventstore.Subject(domain.AggregateWorkspace, "*")},
			Between: lock.PingEvery(5 * time.Second),
			Apply: func(ctx context.Context, recs []eventstore.Record) error {
				for _, r := range recs {
					if err := c.check(ctx, r); err != nil {
						return err
					}
				}
				return projections.SaveCheckpoint(ctx, pool, dataKeyCheck, recs[len(recs)-1].Sequence)
			}}.Run(ctx, from)
		if errors.Is(err, commands.ErrVaultNotWhole) {
			// Hold the lock, so that no other instance goes on; an operator looks,
			// restores the vault, and restarts the instance.
			logger.Error("the data key check stopped", "err", err)
			<-ctx.Done()
			return ctx.Err()
		}
		return err
	})
}

// dataKeyChecker judges the key events of one run of the check.
type dataKeyChecker struct {
	app        *commands.App
	vault      *eventstore.Vault
	grace      time.Duration
	logger     *slog.Logger
	lostInARow int
}

// check waits for the event's grace, then repairs a creation's key whose data key
// is lost, or shreds a deletion's data key again.
func (c *dataKeyChecker) check(ctx context.Context, r eventstore.Record) error {
	switch e := r.Event.(type) {
	case domain.APIKeyCreated:
		if err := after(ctx, r.Time.Add(c.grace)); err != nil || time.Since(r.Time) > dataKeyCheckMaxAge {
			return err
		}
		deleted, err := c.app.RepairDataKey(ctx, r.Aggregate, e.KeyID, e.Sealed)
		if err != nil || !deleted {
			if err == nil {
				c.lostInARow = 0
			}
			return err
		}
		c.logger.Warn("an API key whose data key was lost (its creation died before storing it) is deleted",
			"workspace_id", r.Aggregate, "key_id", e.KeyID)
		if c.lostInARow++; c.lostInARow > maxLostInARow {
			return fmt.Errorf("%d API keys in a row had lost their data keys: %w", c.lostInARow, commands.ErrVaultNotWhole)
		}
	case domain.APIKeyDeleted:
		if err := after(ctx, r.Time.Add(c.grace)); err != nil {
			return err
		}
		// Whatever wrote its data key after the deletion destroyed it (a creation
		// restoring its data keys at that moment) cannot bring the plaintext back.
		return c.vault.Destroy(ctx, e.KeyID)
	}
	return nil
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
