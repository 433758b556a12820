package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// Anonymous stands for the organization of a call refused before anyone was
// authenticated.
const Anonymous = "anonymous"

// AuditSubjectOf is the subject of an organization's records in the audit stream.
func AuditSubjectOf(orgID string) string {
	if orgID == "" {
		orgID = Anonymous
	}
	return "keyledger.audit." + orgID
}

// CallLog keeps the refused calls and replayed answers in the audit stream. Safe
// for concurrent use.
type CallLog struct {
	s       *Store
	logger  *slog.Logger
	slots   chan struct{}
	dropped atomic.Uint64
}

// maxCallsInFlight bounds the records being published at once; past it a record is
// dropped (and counted) rather than a request held: a flood of refused calls must
// not slow anyone down.
const maxCallsInFlight = 256

// Calls is the audit stream's writer and reader.
func (s *Store) Calls(logger *slog.Logger) *CallLog {
	if logger == nil {
		logger = slog.Default()
	}
	return &CallLog{s: s, logger: logger, slots: make(chan struct{}, maxCallsInFlight)}
}

// Record publishes a record in the background: the caller's answer never waits
// for it, and a NATS outage never turns a refusal into another answer. A record
// that cannot be published is logged and counted.
func (l *CallLog) Record(e domain.Event, meta domain.Metadata) {
	m, err := encode(AuditSubjectOf(meta.OrganizationID), meta.RequestID, l.s.cfg.Source, "", e, meta, l.s.cfg.Clock())
	if err != nil {
		l.logger.Error("audit record not encoded", "type", e.EventType(), "err", err)
		return
	}
	select {
	case l.slots <- struct{}{}:
	default:
		l.dropped.Add(1)
		l.logger.Warn("audit record dropped: too many in flight", "type", e.EventType(), "request_id", meta.RequestID)
		return
	}
	go func() {
		defer func() { <-l.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), l.s.cfg.WriteTimeout)
		defer cancel()
		if _, err := l.s.js.PublishMsg(ctx, m); err != nil {
			l.dropped.Add(1)
			l.logger.Warn("audit record not kept", "type", e.EventType(), "request_id", meta.RequestID, "err", err)
		}
	}()
}

// storeSkew bounds how much earlier than a record's own time the stream's storage
// time may be: the record is stored after it is made, but by the NATS server's
// clock, which may lag the instance's.
const storeSkew = time.Minute

// Dropped is how many records could not be kept since start.
func (l *CallLog) Dropped() uint64 { return l.dropped.Load() }

// Read returns the organization's records oldest first, at most limit of them:
// those after stream sequence after (a page's cursor; 0: from the first) whose own
// time (ce-time) is at or after from. The records up to the last one the stream
// holds are read or the read fails: a stall is never taken for the end.
func (l *CallLog) Read(ctx context.Context, orgID string, from time.Time, after uint64, limit int) ([]Record, error) {
	subject := AuditSubjectOf(orgID)
	rctx, cancel := l.s.read(ctx)
	st, err := l.s.js.Stream(rctx, AuditStream)
	if err != nil {
		cancel()
		return nil, fault.Unavailable(fmt.Errorf("audit stream: %w", err))
	}
	last, err := st.GetLastMsgForSubject(rctx, subject)
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return []Record{}, nil
	}
	if err != nil {
		return nil, fault.Unavailable(fmt.Errorf("audit stream: %w", err))
	}
	// The stream stores a record a moment after it was made, by the clock of the
	// NATS server, not the instance's: by storage time the read starts early enough
	// for any record made at or after from, and skips those made before.
	stored := from.Add(-storeSkew)
	if last.Sequence <= after || last.Time.Before(stored) {
		return []Record{}, nil
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case after > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	case !from.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &stored
	}
	sub, err := l.s.subscribeWith(ctx, AuditStream, 0, cfg, false)
	if err != nil {
		return nil, err
	}
	defer sub.Stop()
	out := []Record{}
	for len(out) < limit {
		recs, err := sub.Next(ctx, limit-len(out), l.s.cfg.ReadTimeout)
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			return nil, fault.Unavailable(fmt.Errorf("audit stream: nothing read within %v before sequence %d", l.s.cfg.ReadTimeout, last.Sequence))
		}
		for _, r := range recs {
			if !r.Time.Before(from) {
				out = append(out, r)
			}
			if r.Sequence >= last.Sequence || len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}
