// Package follow is how the log's consumers in this process follow it: a Position
// that anyone can wait on, and a Follower that reads the log in order from a
// position and hands each batch on, subscribing again after a failure. The
// projector and the credential index both follow the log through it.
package follow

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/eventstore"
)

// Position is how far a consumer has applied the log. Safe for concurrent use.
type Position struct {
	pos   atomic.Uint64
	mu    sync.Mutex
	moved chan struct{}
}

// Load is the last applied log position.
func (p *Position) Load() uint64 { return p.pos.Load() }

// Advance records that the log is applied up to pos, and wakes the waiters.
func (p *Position) Advance(pos uint64) {
	p.pos.Store(pos)
	p.mu.Lock()
	if p.moved != nil {
		close(p.moved)
		p.moved = nil
	}
	p.mu.Unlock()
}

// WaitFor blocks until position pos is applied, or ctx ends. poll, when set, is
// asked every 20 ms as well (a standby projector reads the shared checkpoint).
func (p *Position) WaitFor(ctx context.Context, pos uint64, poll ...func(context.Context) (uint64, error)) error {
	for {
		p.mu.Lock()
		if p.moved == nil {
			p.moved = make(chan struct{})
		}
		moved := p.moved
		p.mu.Unlock()
		if p.pos.Load() >= pos {
			return nil
		}
		var tick <-chan time.Time
		if len(poll) > 0 {
			at, err := poll[0](ctx)
			if err != nil {
				return err
			}
			if at >= pos {
				return nil
			}
			tick = time.After(20 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-moved:
		case <-tick:
		}
	}
}

// Log is what a follower needs of the event store.
type Log interface {
	Subscribe(ctx context.Context, from uint64, filters ...string) (*eventstore.Subscription, error)
}

// Follower reads the log in order and hands each batch to Apply.
type Follower struct {
	Log Log
	// BatchSize is the most records handed on at once (default 4096), save the
	// rest of an atomic append begun within it: an append is handed on whole.
	BatchSize int
	// Filters are the subjects followed (default: every event).
	Filters []string
	// Apply takes a batch in log order; an error ends Run.
	Apply func(ctx context.Context, recs []eventstore.Record) error
	// Between, when set, runs at least every second between batches; an error ends
	// Run (the projector checks it still holds its lock).
	Between func(ctx context.Context) error
}

// Run subscribes after position from and applies until ctx ends or a step fails.
func (f Follower) Run(ctx context.Context, from uint64) error {
	size := f.BatchSize
	if size == 0 {
		size = 4096
	}
	sub, err := f.Log.Subscribe(ctx, from, f.Filters...)
	if err != nil {
		return err
	}
	defer sub.Stop()
	for {
		recs, err := sub.Next(ctx, size, time.Second)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			if err := f.Apply(ctx, recs); err != nil {
				return err
			}
		}
		if f.Between != nil {
			if err := f.Between(ctx); err != nil {
				return err
			}
		}
	}
}

// Retry runs step until ctx ends, logging each failure and waiting between runs:
// a consumer of the log outlives the outages of its dependencies.
func Retry(ctx context.Context, wait time.Duration, logger *slog.Logger, what string, step func(context.Context) error) error {
	return repeat(ctx, wait, logger, what, step, false)
}

// Eventually runs step until it succeeds or ctx ends, logging each failure.
func Eventually(ctx context.Context, wait time.Duration, logger *slog.Logger, what string, step func(context.Context) error) error {
	return repeat(ctx, wait, logger, what, step, true)
}

func repeat(ctx context.Context, wait time.Duration, logger *slog.Logger, what string, step func(context.Context) error, untilDone bool) error {
	for {
		err := step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && untilDone {
			return nil
		}
		if err != nil {
			logger.Warn(what+" failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
