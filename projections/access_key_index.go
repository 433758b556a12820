package projections

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// AccessKeyIndex maps access key secret hashes to their organization, in memory, fed
// by this instance's own ordered consumer of the organization events. Safe for
// concurrent use.
type AccessKeyIndex struct {
	store    *eventstore.Store
	logger   *slog.Logger
	mu       sync.RWMutex
	byHash   map[string]string
	position atomic.Uint64
}

// NewAccessKeyIndex returns an empty index; Run fills it.
func NewAccessKeyIndex(store *eventstore.Store, logger *slog.Logger) *AccessKeyIndex {
	return &AccessKeyIndex{store: store, logger: logger, byHash: map[string]string{}}
}

// OrganizationOf implements commands.AccessKeyIndex.
func (x *AccessKeyIndex) OrganizationOf(hash string) (string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	org, ok := x.byHash[hash]
	return org, ok
}

// Remember implements commands.AccessKeyIndex: the instance that created a key
// knows it before its consumer delivers the event. Idempotent.
func (x *AccessKeyIndex) Remember(hash, orgID string) {
	x.mu.Lock()
	x.byHash[hash] = orgID
	x.mu.Unlock()
}

// Position is the last log position applied.
func (x *AccessKeyIndex) Position() uint64 { return x.position.Load() }

// Run consumes organization events until ctx ends, resubscribing after failures.
func (x *AccessKeyIndex) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := x.consume(ctx); err != nil && ctx.Err() == nil {
			x.logger.Warn("access key index: resubscribing", "err", err)
			time.Sleep(time.Second)
		}
	}
	return ctx.Err()
}

func (x *AccessKeyIndex) consume(ctx context.Context) error {
	sub, err := x.store.Subscribe(ctx, x.position.Load(), eventstore.Subject(domain.AggregateOrganization, "*"))
	if err != nil {
		return err
	}
	defer sub.Stop()
	for {
		recs, err := sub.Next(ctx, 1000, time.Second)
		if err != nil {
			return err
		}
		x.mu.Lock()
		for _, r := range recs {
			if e, ok := r.Event.(domain.AccessKeyCreated); ok {
				x.byHash[e.SecretHash] = r.Aggregate
			}
		}
		x.mu.Unlock()
		if len(recs) > 0 {
			x.position.Store(recs[len(recs)-1].Sequence)
		}
	}
}
