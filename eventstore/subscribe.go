package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/fault"
)

// Subscription reads the log in order from a position. Not safe for concurrent use.
type Subscription struct {
	cons    jetstream.Consumer
	pending []jetstream.Msg
	batch   jetstream.MessageBatch
}

// Subscribe starts an ordered consumer at sequence from+1 (from = 0: the beginning)
// on the given subject filters (all events when none).
func (s *Store) Subscribe(ctx context.Context, from uint64, filters ...string) (*Subscription, error) {
	if len(filters) == 0 {
		filters = []string{EventsSubject}
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from + 1
	}
	cons, err := s.js.OrderedConsumer(ctx, EventsStream, cfg)
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("subscribe from %d: %w", from, err))
	}
	return &Subscription{cons: cons}, nil
}

// Next returns up to max records: it waits up to wait for the first one, then takes
// whatever else is already delivered without waiting. An empty result means nothing
// arrived in time.
func (sub *Subscription) Next(ctx context.Context, max int, wait time.Duration) ([]Record, error) {
	var out []Record
	fetched := false
	for len(out) < max {
		if sub.batch == nil {
			if fetched {
				return out, nil
			}
			fetched = true
			b, err := sub.cons.Fetch(max, jetstream.FetchMaxWait(wait))
			if err != nil {
				return out, fault.Unavailable(fmt.Errorf("fetch: %w", err))
			}
			sub.batch = b
		}
		var (
			m  jetstream.Msg
			ok bool
		)
		if len(out) == 0 {
			select {
			case m, ok = <-sub.batch.Messages():
			case <-ctx.Done():
				return out, ctx.Err()
			}
		} else {
			select {
			case m, ok = <-sub.batch.Messages():
			default:
				return out, nil
			}
		}
		if !ok {
			err := sub.batch.Error()
			sub.batch = nil
			if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
				return out, fault.Unavailable(fmt.Errorf("fetch: %w", err))
			}
			if len(out) > 0 {
				return out, nil
			}
			continue
		}
		md, err := m.Metadata()
		if err != nil {
			return out, fmt.Errorf("message metadata: %w", err)
		}
		r, err := decode(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data())
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
