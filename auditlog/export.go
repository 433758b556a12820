package auditlog

import (
	"context"
	"errors"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/eventstore"
)

// Log is the events log as an export reads it: the stored bytes, which are the
// leaves, without decoding the events.
type Log interface {
	SubscribeRaw(ctx context.Context, from uint64) (*eventstore.Subscription, error)
	Position(ctx context.Context) (uint64, error)
}

// Range is what an export covers: an organization's events after a log position,
// up to another, or on as they are appended.
type Range struct {
	OrganizationID string
	// After is the log position the export starts after (0: the beginning).
	After uint64
	// Until is the last log position covered (0: the log's end when the export
	// starts); ignored when Follow.
	Until uint64
	// Follow keeps the export going as events are appended, until ctx ends.
	Follow bool
	// FirstLeaf is the leaf index of the organization's first event after After,
	// when known (the audit views know it); nil counts the leaves from the log's
	// beginning.
	FirstLeaf *uint64
	// Flush, when set, is called after each batch read from the log (so a
	// followed stream shows each event at once, and a long export is not written
	// a line at a time).
	Flush func() error
	// Allowed, when set, is asked before each batch is emitted (and at least every
	// second while nothing comes): an error ends the export there. A followed
	// export has no next request at which a revoked reader would be refused.
	Allowed func(ctx context.Context) error
}

// Export calls emit with each of the organization's events in the range, in log
// order: its events with their leaf indices, its checkpoints without. It reads the
// log with one ordered consumer and filters on the organization header.
func Export(ctx context.Context, log Log, r Range, emit func(audit.Event) error) error {
	until := r.Until
	if !r.Follow {
		head, err := log.Position(ctx)
		if err != nil {
			return err
		}
		if until == 0 || until > head {
			until = head
		}
		if until <= r.After {
			return nil
		}
	}
	from, leaf := r.After, uint64(0)
	if r.FirstLeaf != nil {
		leaf = *r.FirstLeaf
	} else {
		from = 0
	}
	sub, err := log.SubscribeRaw(ctx, from)
	if err != nil {
		return err
	}
	defer sub.Stop()
	for {
		recs, err := sub.Next(ctx, 1024, time.Second)
		if err != nil {
			if errors.Is(err, context.Canceled) && r.Follow {
				return nil
			}
			return err
		}
		if r.Allowed != nil {
			if err := r.Allowed(ctx); err != nil {
				return err
			}
		}
		for _, rec := range recs {
			if !r.Follow && rec.Sequence > until {
				return nil
			}
			if rec.Metadata.OrganizationID != r.OrganizationID {
				continue
			}
			var index *uint64
			if audit.IsLeaf(rec) {
				i := leaf
				index, leaf = &i, leaf+1
			}
			if rec.Sequence <= r.After {
				continue
			}
			if err := emit(audit.FromRecord(rec, index)); err != nil {
				return err
			}
		}
		if r.Flush != nil && len(recs) > 0 {
			if err := r.Flush(); err != nil {
				return err
			}
		}
		if !r.Follow && len(recs) > 0 && recs[len(recs)-1].Sequence >= until {
			return nil
		}
	}
}
