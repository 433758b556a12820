package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// maxUsageInFlight bounds the usage records published and not yet acknowledged.
const maxUsageInFlight = 512

// UsageSubjectOf is the subject of an organization's workspace's usage records.
func UsageSubjectOf(orgID, workspaceID string) string {
	return "keyledger.usage." + orgID + "." + workspaceID
}

// UsageMsgID is a record's Nats-Msg-Id: its id, within its organization (two
// organizations' gateways may choose the same record ids).
func UsageMsgID(orgID, recordID string) string { return orgID + ":" + recordID }

// UsageOutcome is what the usage stream did with one record.
type UsageOutcome struct {
	// Duplicate: the stream already holds this record (within its duplicate window).
	Duplicate bool
	// Err: the record was not stored (fault.ErrUnavailable); sending it again is safe.
	Err error
}

// UsageMessage is the message of a usage record as the usage stream keeps it: its
// CloudEvents envelope (ce-subject the record id) and Nats-Msg-Id UsageMsgID.
func UsageMessage(source string, r domain.UsageRecorded, at time.Time) (*nats.Msg, error) {
	return encode(UsageSubjectOf(r.OrganizationID, r.WorkspaceID), r.RecordID, source, UsageMsgID(r.OrganizationID, r.RecordID), r,
		domain.Metadata{OrganizationID: r.OrganizationID, WorkspaceID: r.WorkspaceID}, at)
}

// PublishUsage appends usage records to the usage stream as CloudEvents,
// asynchronously with a bounded number in flight, and says for each what happened.
func (s *Store) PublishUsage(ctx context.Context, recs []domain.UsageRecorded) ([]UsageOutcome, error) {
	out := make([]UsageOutcome, len(recs))
	futures := make([]jetstream.PubAckFuture, len(recs))
	at := s.cfg.Clock()
	// One budget for the whole batch: waiting for room among the publishes in flight
	// (the client's own default gives up after 200 ms) and for the acknowledgements.
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	for i, r := range recs {
		m, err := UsageMessage(s.cfg.Source, r, at)
		if err != nil {
			return nil, err
		}
		id := m.Header.Get(HeaderID)
		wait := time.Until(deadline)
		if wait <= 0 {
			out[i].Err = fault.Unavailable(fmt.Errorf("publish usage %s: the write timeout passed", id))
			continue
		}
		if futures[i], err = s.js.PublishMsgAsync(m, jetstream.WithStallWait(wait)); err != nil {
			out[i].Err = fault.Unavailable(fmt.Errorf("publish usage %s: %w", id, err))
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for i, f := range futures {
		if f == nil {
			continue
		}
		// An answer already in is taken before the deadline is looked at: once one
		// record's acknowledgement was waited for until the deadline, the others'
		// that came meanwhile must not lose a race with it.
		select {
		case ack := <-f.Ok():
			out[i] = outcome(ack, nil)
			continue
		case err := <-f.Err():
			out[i] = outcome(nil, err)
			continue
		default:
		}
		select {
		case ack := <-f.Ok():
			out[i] = outcome(ack, nil)
		case err := <-f.Err():
			out[i] = outcome(nil, err)
		case <-ctx.Done():
			out[i] = outcome(nil, ctx.Err())
		}
	}
	return out, nil
}

// outcome is a publish's acknowledgement, or its failure, as the intake answers it.
func outcome(ack *jetstream.PubAck, err error) UsageOutcome {
	if err != nil {
		return UsageOutcome{Err: fault.Unavailable(fmt.Errorf("publish usage: %w", err))}
	}
	return UsageOutcome{Duplicate: ack.Duplicate}
}

// Each reads the usage stream from its start up to position end, record by record,
// until fn returns false.
func (u UsageLog) Each(ctx context.Context, end uint64, fn func(domain.UsageRecorded) bool) error {
	if end == 0 {
		return nil
	}
	last, err := u.Position(ctx)
	if err != nil {
		return err
	}
	if last < end {
		return fmt.Errorf("usage stream: it ends at %d, before %d", last, end)
	}
	sub, err := u.Subscribe(ctx, 0)
	if err != nil {
		return err
	}
	defer sub.Stop()
	for {
		recs, err := sub.Next(ctx, 4096, u.s.cfg.ReadTimeout)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fault.Unavailable(fmt.Errorf("usage stream: nothing read before its end %d", end))
		}
		for _, r := range recs {
			if r.Sequence > end { // the one at end is gone (retention): stop before what follows it
				return nil
			}
			if rec, ok := r.Event.(domain.UsageRecorded); ok && !fn(rec) {
				return nil
			}
			if r.Sequence == end {
				return nil
			}
		}
	}
}
