package eventstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/fault"
)

// Subscription reads the log in order from a position. A background goroutine
// pulls and decodes ahead (up to prefetch records), so a slow reader such as a
// projector committing to PostgreSQL overlaps with the network. Next is not safe
// for concurrent use; Stop is.
type Subscription struct {
	raw  bool // records as stored, without their Event
	it   jetstream.MessagesContext
	recs chan Record
	held []Record // the start of an append whose rest was late, for the next Next
	err  error    // set before recs is closed
	done chan struct{}
}

const prefetch = 4096

// Subscribe starts an ordered consumer at sequence from+1 (from = 0: the beginning)
// on the given subject filters (all events when none). Stop it when done.
func (s *Store) Subscribe(ctx context.Context, from uint64, filters ...string) (*Subscription, error) {
	if len(filters) == 0 {
		filters = []string{EventsSubject}
	}
	return s.subscribe(ctx, EventsStream, from, filters)
}

// SubscribeRaw is Subscribe for readers of the stored bytes only (the audit
// export): its records have no decoded Event.
func (s *Store) SubscribeRaw(ctx context.Context, from uint64) (*Subscription, error) {
	return s.subscribeAs(ctx, EventsStream, from, []string{EventsSubject}, true)
}

// UsageLog is the usage stream as its consumers follow it (the cost projector).
type UsageLog struct{ s *Store }

// Usage is the usage stream, to follow.
func (s *Store) Usage() UsageLog { return UsageLog{s} }

// Subscribe starts an ordered consumer of the usage stream at sequence from+1.
func (u UsageLog) Subscribe(ctx context.Context, from uint64, filters ...string) (*Subscription, error) {
	if len(filters) == 0 {
		filters = []string{UsageSubject}
	}
	return u.s.subscribe(ctx, UsageStream, from, filters)
}

// Position is the sequence of the last usage record (0 when none).
func (u UsageLog) Position(ctx context.Context) (uint64, error) {
	ctx, cancel := u.s.read(ctx)
	defer cancel()
	st, err := u.s.js.Stream(ctx, UsageStream)
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("usage stream: %w", err))
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fault.Unavailable(fmt.Errorf("usage stream info: %w", err))
	}
	return info.State.LastSeq, nil
}

func (s *Store) subscribe(ctx context.Context, stream string, from uint64, filters []string) (*Subscription, error) {
	return s.subscribeAs(ctx, stream, from, filters, false)
}

func (s *Store) subscribeAs(ctx context.Context, stream string, from uint64, filters []string, raw bool) (*Subscription, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from + 1
	}
	return s.subscribeWith(ctx, stream, from, cfg, raw)
}

func (s *Store) subscribeWith(ctx context.Context, stream string, from uint64, cfg jetstream.OrderedConsumerConfig, raw bool) (*Subscription, error) {
	cons, err := s.js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("subscribe from %d: %w", from, err))
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(prefetch))
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("subscribe from %d: %w", from, err))
	}
	sub := &Subscription{raw: raw, it: it, recs: make(chan Record, prefetch), done: make(chan struct{})}
	go sub.pump()
	return sub, nil
}

func (sub *Subscription) pump() {
	defer close(sub.recs)
	for {
		m, err := sub.it.Next()
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				sub.err = fault.Unavailable(fmt.Errorf("consume: %w", err))
			}
			return
		}
		md, err := m.Metadata()
		if err != nil {
			sub.err = fmt.Errorf("message metadata: %w", err)
			return
		}
		var r Record
		if sub.raw {
			r = decodeRaw(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data())
		} else if r, err = decode(md.Sequence.Stream, m.Subject(), m.Headers(), m.Data()); err != nil {
			sub.err = err
			return
		}
		select {
		case sub.recs <- r:
		case <-sub.done:
			return
		}
	}
}

// Next returns up to max records, and never part of an atomic append: it waits up
// to wait for the first one, takes whatever else is already decoded without
// waiting, then, within wait, the rest of an append it took the start of (beyond
// max if need be). An append still open then is kept for the next call. An empty
// result means nothing (whole) arrived in time.
func (sub *Subscription) Next(ctx context.Context, max int, wait time.Duration) ([]Record, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	out := sub.held
	sub.held = nil
	if len(out) == 0 {
		select {
		case r, ok := <-sub.recs:
			if !ok {
				return nil, sub.closedErr()
			}
			out = make([]Record, 1, min(max, 1+len(sub.recs))) // what is decoded already, once
			out[0] = r
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	closed := false
	for len(out) < max || out[len(out)-1].midAppend {
		r, ok, more := Record{}, false, true
		if out[len(out)-1].midAppend { // the rest of an append is worth waiting for
			select {
			case r, ok = <-sub.recs:
			case <-timer.C:
				more = false
			case <-ctx.Done():
				sub.held = out
				return nil, ctx.Err()
			}
		} else {
			select {
			case r, ok = <-sub.recs:
			default:
				more = false
			}
		}
		if !more {
			break
		}
		if !ok { // the error, if any, comes with the next call
			closed = true
			break
		}
		out = append(out, r)
	}
	whole := len(out)
	for whole > 0 && out[whole-1].midAppend {
		whole--
	}
	if whole < len(out) {
		sub.held = slices.Clone(out[whole:])
	}
	if whole == 0 && closed {
		return nil, sub.closedErr()
	}
	return out[:whole], nil
}

func (sub *Subscription) closedErr() error {
	if sub.err != nil {
		return sub.err
	}
	return fault.Unavailable(errors.New("subscription stopped"))
}

// Stop ends the subscription and its goroutine.
func (sub *Subscription) Stop() {
	select {
	case <-sub.done:
	default:
		close(sub.done)
	}
	sub.it.Stop()
}
