package projections

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/eventstore"
)

// Redeliver feeds the log from position `from` into r's commit as a consumer that
// lost its place would, for the redelivery test.
func Redeliver(ctx context.Context, r *Runner, store *eventstore.Store, from uint64) error {
	sub, err := store.Subscribe(ctx, from)
	if err != nil {
		return err
	}
	recs, err := sub.Next(ctx, 1000, time.Second)
	if err != nil {
		return err
	}
	return r.commit(ctx, recs)
}
