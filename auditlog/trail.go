package auditlog

import (
	"context"
	"errors"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// Trail answers the auditors: the audit views, the proofs, the checkpoints and the
// raw log. Safe for concurrent use.
type Trail struct {
	Views projections.Audit
	// Runner is the audit projector, waited on so that answers include the log as
	// it stood when asked.
	Runner interface {
		WaitFor(ctx context.Context, pos uint64) error
		CaughtUp(ctx context.Context, log projections.LogEnd) error
	}
	Log interface {
		Log
		Appender
	}
	Checkpointer *Checkpointer
	// Calls is the audit stream of refused calls and replayed answers.
	Calls CallLog
	// Keys are the verifier keys of the checkpoints: the current key first, then
	// those of rotated keys.
	Keys []string
}

// Origin is the origin of an organization's checkpoints.
func (t Trail) Origin(orgID string) string { return t.Checkpointer.Origin(orgID) }

// PublicKeys are the checkpoints' verifier keys, the current one first.
func (t Trail) PublicKeys() []string { return t.Keys }

// WaitFor blocks until the audit views include log position pos.
func (t Trail) WaitFor(ctx context.Context, pos uint64) error { return t.Runner.WaitFor(ctx, pos) }

// Entries is a page of the organization's audit entries, newest first.
func (t Trail) Entries(ctx context.Context, orgID string, f projections.AuditFilter, page projections.Page) ([]projections.AuditRow, string, error) {
	return t.Views.List(ctx, orgID, f, page)
}

// EachEntry calls fn with every entry the filter selects, newest first.
func (t Trail) EachEntry(ctx context.Context, orgID string, f projections.AuditFilter, fn func(projections.AuditRow) error) error {
	return t.Views.Each(ctx, orgID, f, fn)
}

// LastEntry is the latest entry at or before at that the filter selects.
func (t Trail) LastEntry(ctx context.Context, orgID string, f projections.EvidenceFilter, at time.Time) (projections.AuditRow, bool, error) {
	return t.Views.LastEntry(ctx, orgID, f, at)
}

// KeyWorkspace is the workspace an API key of the organization was created in.
func (t Trail) KeyWorkspace(ctx context.Context, orgID, keyID string) (string, error) {
	return t.Views.KeyWorkspace(ctx, orgID, keyID)
}

// Checkpoint is the organization's latest checkpoint.
func (t Trail) Checkpoint(ctx context.Context, orgID string) (projections.SignedCheckpoint, error) {
	return t.Views.Checkpoint(ctx, orgID)
}

// CaughtUp waits until the audit views include the log as it stands now.
func (t Trail) CaughtUp(ctx context.Context) error { return t.Runner.CaughtUp(ctx, t.Log) }

// SignCheckpoint publishes a checkpoint of the organization's whole history now
// (unless the latest already covers it) and returns it.
func (t Trail) SignCheckpoint(ctx context.Context, orgID string) (projections.SignedCheckpoint, error) {
	for {
		h, err := t.Checkpointer.Current(ctx, orgID)
		if err != nil {
			return projections.SignedCheckpoint{}, err
		}
		pos := h.CheckpointPosition // the latest covers it: read that one
		if h.Size != h.CheckpointSize {
			pos, err = t.Checkpointer.Sign(ctx, h)
			if errors.Is(err, domain.ErrConflict) {
				continue // another instance signed meanwhile: read what it signed
			}
			if err != nil {
				return projections.SignedCheckpoint{}, err
			}
		}
		if err := t.Runner.WaitFor(ctx, pos); err != nil {
			return projections.SignedCheckpoint{}, err
		}
		return t.Views.Checkpoint(ctx, orgID)
	}
}

// InclusionProof proves an event's place in the organization's tree of a size.
type InclusionProof struct {
	EventID   string
	LeafIndex uint64
	Size      uint64
	Root      []byte
	Hashes    [][]byte
}

// Inclusion proves that the event is in the tree of the given size (0: the tree
// of the latest checkpoint).
func (t Trail) Inclusion(ctx context.Context, orgID, eventID string, size uint64) (InclusionProof, error) {
	if size == 0 {
		cp, err := t.Views.Checkpoint(ctx, orgID)
		if err != nil {
			return InclusionProof{}, err
		}
		size = cp.Size
	}
	leaf, err := t.Views.LeafIndex(ctx, orgID, eventID)
	if err != nil {
		return InclusionProof{}, err
	}
	hashes, err := t.Views.InclusionProof(ctx, orgID, leaf, size)
	if err != nil {
		return InclusionProof{}, err
	}
	root, err := t.Views.RootAt(ctx, orgID, size)
	if err != nil {
		return InclusionProof{}, err
	}
	return InclusionProof{EventID: eventID, LeafIndex: leaf, Size: size, Root: root, Hashes: hashes}, nil
}

// ConsistencyProof proves that the tree of size To extends the tree of size From.
type ConsistencyProof struct {
	From, To         uint64
	FromRoot, ToRoot []byte
	Hashes           [][]byte
}

// Consistency proves that the tree of size to (0: the latest checkpoint's) extends
// the tree of size from.
func (t Trail) Consistency(ctx context.Context, orgID string, from, to uint64) (ConsistencyProof, error) {
	if to == 0 {
		cp, err := t.Views.Checkpoint(ctx, orgID)
		if err != nil {
			return ConsistencyProof{}, err
		}
		to = cp.Size
	}
	hashes, err := t.Views.ConsistencyProof(ctx, orgID, from, to)
	if err != nil {
		return ConsistencyProof{}, err
	}
	p := ConsistencyProof{From: from, To: to, Hashes: hashes}
	if p.FromRoot, err = t.Views.RootAt(ctx, orgID, from); err != nil {
		return ConsistencyProof{}, err
	}
	if p.ToRoot, err = t.Views.RootAt(ctx, orgID, to); err != nil {
		return ConsistencyProof{}, err
	}
	return p, nil
}

// Reached waits until the audit views include log position after, or the log's end
// when after is past it.
func (t Trail) Reached(ctx context.Context, after uint64) error {
	head, err := t.Log.Position(ctx)
	if err != nil {
		return err
	}
	return t.Runner.WaitFor(ctx, min(after, head))
}

// Events exports the organization's raw events after a log position, with their
// leaf indices, read from the log; the audit views give the first leaf index, once
// they have Reached the position (the caller waits for that first, bounded).
func (t Trail) Events(ctx context.Context, r Range, emit func(audit.Event) error) error {
	first, err := t.Views.LeavesThrough(ctx, r.OrganizationID, r.After)
	if err != nil {
		return err
	}
	r.FirstLeaf = &first
	return Export(ctx, t.Log, r, emit)
}
