package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/credindex"
)

// lastUsedChunk bounds one write of last-use times.
const lastUsedChunk = 10_000

// flushLastUsed writes, every interval and once more when the instance stops, when
// this instance's verifications last allowed each key: off the verification path,
// which only stores a minute in memory. A failed write is retried at the next tick.
func flushLastUsed(ctx context.Context, x *credindex.Index, keys projections.APIKeys, every time.Duration, logger *slog.Logger) error {
	flush := func(ctx context.Context) {
		uses := x.LastUsed()
		for len(uses) > 0 {
			n := min(len(uses), lastUsedChunk)
			ids, ats := make([]string, n), make([]time.Time, n)
			for i, u := range uses[:n] {
				ids[i], ats[i] = u.KeyID, u.At
			}
			if err := keys.RecordUse(ctx, ids, ats); err != nil {
				x.Unflushed(uses)
				logger.Warn("could not write when keys were last used; retrying", "keys", len(uses), "err", err)
				return
			}
			uses = uses[n:]
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			flush(stop)
			cancel()
			return nil
		case <-t.C:
			flush(ctx)
		}
	}
}
