package auditlog

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// CallLog is the audit stream: refused calls and replayed answers.
type CallLog interface {
	Record(e domain.Event, meta domain.Metadata)
	Read(ctx context.Context, orgID string, from time.Time, after uint64, limit int) ([]eventstore.Record, error)
}

// Call is a record of the audit stream as auditors read it.
type Call struct {
	// Sequence is its place in the audit stream (a page's cursor).
	Sequence  uint64
	EventID   string
	EventType string
	At        time.Time
	Meta      domain.Metadata
	// Refused or Replayed, by EventType.
	Refused  *domain.CallRefused
	Replayed *domain.ResponseReplayed
}

// RecordCall keeps a refused call or a replayed answer, in the background.
func (t Trail) RecordCall(e domain.Event, meta domain.Metadata) {
	if t.Calls != nil {
		t.Calls.Record(e, meta)
	}
}

// ReadCalls returns the organization's refused calls and replayed answers after
// the stream sequence after (0: from the first) and at or after from, oldest first,
// at most limit.
func (t Trail) ReadCalls(ctx context.Context, orgID string, from time.Time, after uint64, limit int) ([]Call, error) {
	recs, err := t.Calls.Read(ctx, orgID, from, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Call, 0, len(recs))
	for _, r := range recs {
		c := Call{Sequence: r.Sequence, EventID: r.ID, EventType: r.Type, At: r.Time, Meta: r.Metadata}
		switch e := r.Event.(type) {
		case domain.CallRefused:
			c.Refused = &e
		case domain.ResponseReplayed:
			c.Replayed = &e
		}
		out = append(out, c)
	}
	return out, nil
}
