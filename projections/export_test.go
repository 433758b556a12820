package projections

import (
	"context"
	"errors"
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
	defer sub.Stop()
	var all []eventstore.Record
	for {
		recs, err := sub.Next(ctx, 1000, 200*time.Millisecond)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		all = append(all, recs...)
	}
	if len(all) == 0 {
		return errors.New("nothing redelivered")
	}
	return r.commit(ctx, all)
}
