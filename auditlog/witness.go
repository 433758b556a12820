package auditlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/follow"
)

// rawLog follows the log's stored bytes, as the export reads them (an event this
// version cannot decode is a leaf all the same).
type rawLog struct{ Log }

func (l rawLog) Subscribe(ctx context.Context, from uint64, _ ...string) (*eventstore.Subscription, error) {
	return l.SubscribeRaw(ctx, from)
}

// WitnessLog is what the witness reads: the log's stored bytes, and each
// organization's latest checkpoint, to resume from.
type WitnessLog interface {
	Log
	LastOfEach(ctx context.Context, kind string) ([]eventstore.Record, error)
	Aggregates(ctx context.Context, kind string) ([]string, error)
	FirstSequence(ctx context.Context, kind, id string) (uint64, error)
}

// Witness holds every organization's tree as the log itself builds it, in memory:
// the checkpointer signs the roots it gives. The audit views hold the same trees,
// for the proofs, but they are derived data in PostgreSQL, and whoever can write
// there must not obtain a genuine signature over a root of their choosing; a proof
// served from a bent view then fails against the signed root, as it should. The
// leaves are the export's (audit.IsLeaf): every event of an organization but its
// checkpoints, in log order.
//
// At start it resumes each organization's tree from its latest checkpoint, if the
// current signing key signed it and its border gives the signed root (the border
// is in the event, the log position its tree reaches in the signed note), and
// reads the log from the earliest of those positions, or from where the history
// of an organization without such a checkpoint begins, if earlier.
type Witness struct {
	log      WitnessLog
	trust    note.Verifiers // the current signing key's; nil: it does not resume
	origin   string
	logger   *slog.Logger
	position follow.Position

	mu     sync.Mutex
	trees  audit.Forest
	signed map[string]signedAt // each organization's latest checkpoint
	resume map[string]uint64   // a resumed tree holds its organization's events up to here; nil: none resumed
}

// signedAt is a checkpoint: the tree size it signed, its log position, and
// whether a starting witness can resume from it (it carries its border and the
// position its tree reaches).
type signedAt struct {
	size, position uint64
	resumable      bool
}

// NewWitness returns a witness of the checkpoints signer signs, whose origins
// begin with origin; Run follows the log. Without a signer it does not resume.
func NewWitness(log WitnessLog, signer *audit.Signer, origin string, logger *slog.Logger) (*Witness, error) {
	w := &Witness{log: log, origin: origin, logger: logger, trees: audit.Forest{}, signed: map[string]signedAt{}}
	if signer != nil {
		var err error
		if w.trust, err = audit.Verifiers(signer.VerifierKey()); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// errNotResumed: the trees resumed from the checkpoints lack an organization's
// beginning (a history not begun by its organization's creation); the witness
// reads the log from its start.
var errNotResumed = errors.New("audit witness: an organization's history began before the position resumed at; reading the log from its start")

// Run follows the log until ctx ends, subscribing again after a failure.
func (w *Witness) Run(ctx context.Context) error {
	resume := w.trust != nil
	return follow.Retry(ctx, time.Second, w.logger, "audit witness", func(ctx context.Context) error {
		if resume {
			err := w.resumeFromCheckpoints(ctx)
			if errors.Is(err, fault.ErrUnavailable) {
				return err // asked again
			}
			if err != nil {
				w.logger.Warn("audit witness: not resuming from the checkpoints; reading the log from its start", "err", err)
			}
			resume = false
		}
		return follow.Follower{Log: rawLog{w.log}, Apply: w.apply}.Run(ctx, w.position.Load())
	})
}

// resumeFromCheckpoints takes each organization's latest checkpoint that it can
// resume from, and sets the witness at the earliest position they reach, or
// before the first event of an organization that has none; at the log's start
// when no checkpoint is resumed from.
func (w *Witness) resumeFromCheckpoints(ctx context.Context) error {
	recs, err := w.log.LastOfEach(ctx, domain.AggregateCheckpoint)
	if err != nil {
		return err
	}
	trees, signed, resume := audit.Forest{}, map[string]signedAt{}, map[string]uint64{}
	from, refused := uint64(0), map[string]int{}
	for _, r := range recs {
		org := r.Metadata.OrganizationID
		tree, reaches, err := w.treeOf(org, r)
		if err != nil {
			refused[err.Error()]++
			continue
		}
		trees[org], resume[org] = tree, reaches
		signed[org] = signedAt{size: tree.End(), position: r.Sequence, resumable: true}
		if from == 0 || reaches < from {
			from = reaches
		}
	}
	if len(refused) > 0 {
		w.logger.Info("audit witness: checkpoints it does not resume from", "reasons", refused)
	}
	if from == 0 {
		return nil
	}
	orgs, err := w.log.Aggregates(ctx, domain.AggregateOrganization)
	if err != nil {
		return err
	}
	for _, org := range orgs {
		if _, ok := resume[org]; ok {
			continue
		}
		first, err := w.log.FirstSequence(ctx, domain.AggregateOrganization, org)
		if err != nil {
			return err
		}
		if from = min(from, max(first, 1)-1); from == 0 {
			return nil
		}
	}
	w.mu.Lock()
	w.trees, w.signed, w.resume = trees, signed, resume
	w.position.Advance(from) // under the lock: a head's position is its trees'
	w.mu.Unlock()
	w.logger.Info("audit witness: resumed from the checkpoints", "organizations", len(trees), "position", from)
	return nil
}

// treeOf is the tree an organization's checkpoint record signs, and the log
// position up to which it holds the organization's events, if the current key
// signed it and its border gives its root.
func (w *Witness) treeOf(org string, r eventstore.Record) (*compact.Range, uint64, error) {
	var e domain.CheckpointSigned
	if org == "" || r.Raw.Type != domain.TypeCheckpointSigned {
		return nil, 0, errors.New("not a checkpoint of an organization")
	}
	if err := json.Unmarshal(r.Raw.Data, &e); err != nil {
		return nil, 0, errors.New("unreadable")
	}
	if !resumable(e) {
		return nil, 0, errors.New("signed before checkpoints carried their border and position")
	}
	cp, err := audit.OpenCheckpoint([]byte(e.Note), w.trust, audit.Origin(w.origin, org))
	if err != nil {
		return nil, 0, err
	}
	tree, err := audit.Ranges.NewRange(0, cp.Size, e.Border)
	if err != nil {
		return nil, 0, err
	}
	if root, err := tree.GetRootHash(nil); err != nil || !bytes.Equal(root, cp.Root) {
		return nil, 0, errors.New("its border does not give its signed root")
	}
	return tree, cp.Position, nil
}

// resumable says whether a checkpoint has what a starting witness resumes from:
// its border and the position its tree reaches (not who signed it, nor whether
// they are right: treeOf checks that).
func resumable(e domain.CheckpointSigned) bool {
	return len(e.Border) > 0 && audit.SaysPosition(e.Note)
}

func (w *Witness) apply(_ context.Context, recs []eventstore.Record) error {
	w.mu.Lock()
	for _, r := range recs {
		org := r.Metadata.OrganizationID
		if org == "" || r.Sequence <= w.resume[org] { // none, or in the tree resumed
			continue
		}
		if r.Raw.Type == domain.TypeCheckpointSigned {
			// The position alone matters to the next append (it expects it); the size
			// says whether the tree grew since, and one without its border or
			// position (signed by an earlier version) is signed again. Whose key
			// signed it is not asked: instances whose keys differ during a rotation
			// would otherwise sign each other's trees again, in turn.
			var cp domain.CheckpointSigned
			if err := json.Unmarshal(r.Raw.Data, &cp); err != nil {
				w.logger.Warn("audit witness: a checkpoint it cannot read", "position", r.Sequence, "err", err)
			}
			w.signed[org] = signedAt{size: cp.Size, position: r.Sequence, resumable: resumable(cp)}
			continue
		}
		if _, ok := w.trees[org]; !ok && w.resume != nil && r.Raw.Type != domain.TypeOrganizationCreated {
			w.trees, w.signed, w.resume = audit.Forest{}, map[string]signedAt{}, nil
			w.position.Advance(0)
			w.mu.Unlock()
			return errNotResumed
		}
		w.trees.Grow(r, nil)
	}
	w.position.Advance(recs[len(recs)-1].Sequence)
	w.mu.Unlock()
	return nil
}

// CaughtUp waits until the witness holds the log as it stands now.
func (w *Witness) CaughtUp(ctx context.Context) error {
	end, err := w.log.Position(ctx)
	if err != nil {
		return err
	}
	return w.position.WaitFor(ctx, end)
}

// Head is the organization's tree as the log gives it up to the witness's
// position, with its latest checkpoint; projections.ErrNoAuditTree when it has no
// leaf yet.
func (w *Witness) Head(_ context.Context, orgID string) (projections.TreeHead, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.trees[orgID]; !ok {
		return projections.TreeHead{}, projections.ErrNoAuditTree
	}
	return w.head(orgID), nil
}

// Unsigned lists the trees that grew past their latest checkpoint, or whose latest
// checkpoint a starting witness cannot resume from, in id order.
func (w *Witness) Unsigned(context.Context) ([]projections.TreeHead, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var heads []projections.TreeHead
	for org, tree := range w.trees {
		if cp := w.signed[org]; tree.End() > cp.size || !cp.resumable {
			heads = append(heads, w.head(org))
		}
	}
	slices.SortFunc(heads, func(a, b projections.TreeHead) int { return strings.Compare(a.OrganizationID, b.OrganizationID) })
	return heads, nil
}

// head is an organization's head; caller holds w.mu.
func (w *Witness) head(org string) projections.TreeHead {
	tree, cp := w.trees[org], w.signed[org]
	root, _ := tree.GetRootHash(nil) // a range from 0 has a root
	return projections.TreeHead{OrganizationID: org, Size: tree.End(), Root: root, CheckpointSize: cp.size, CheckpointPosition: cp.position,
		Border: slices.Clone(tree.Hashes()), Position: max(w.position.Load(), w.resume[org])}
}
