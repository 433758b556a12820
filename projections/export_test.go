package projections

import (
	"context"
	"errors"
	"time"

	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections/follow"
)

// Redeliver feeds the log from position `from` into r's writer as a consumer that
// lost its place in the log (not its checkpoint) would, for the redelivery test.
func Redeliver(ctx context.Context, r *Runner, log follow.Log, from uint64) error {
	sub, err := log.Subscribe(ctx, from)
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
	// The runner starts from its checkpoint, as Run does.
	pos, err := Checkpoint(ctx, r.pool, r.cfg.Name)
	if err != nil {
		return err
	}
	w := &writer{r: r, folded: pos}
	if err := w.apply(ctx, all); err != nil {
		return err
	}
	return w.wait()
}
