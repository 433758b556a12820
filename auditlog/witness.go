package auditlog

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/projections"
	"github.com/keyledger/keyledger/projections/follow"
)

// rawLog follows the log's stored bytes, as the export reads them (an event this
// version cannot decode is a leaf all the same).
type rawLog struct{ Log }

func (l rawLog) Subscribe(ctx context.Context, from uint64, _ ...string) (*eventstore.Subscription, error) {
	return l.SubscribeRaw(ctx, from)
}

// Witness holds every organization's tree as the log itself builds it, in memory,
// by following the log from its start: the checkpointer signs the roots it gives.
// The audit views hold the same trees, for the proofs, but they are derived data
// in PostgreSQL, and whoever can write there must not obtain a genuine signature
// over a root of their choosing; a proof served from a bent view then fails
// against the signed root, as it should. The leaves are the export's
// (audit.IsLeaf): every event of an organization but its checkpoints, in log
// order.
type Witness struct {
	log      Log
	logger   *slog.Logger
	position follow.Position

	mu     sync.Mutex
	trees  audit.Forest
	signed map[string]signedAt // each organization's latest checkpoint
}

// signedAt is a checkpoint: the tree size it signed and its log position.
type signedAt struct{ size, position uint64 }

// NewWitness returns a witness; Run follows the log.
func NewWitness(log Log, logger *slog.Logger) *Witness {
	return &Witness{log: log, logger: logger, trees: audit.Forest{}, signed: map[string]signedAt{}}
}

// Run follows the log until ctx ends, subscribing again after a failure.
func (w *Witness) Run(ctx context.Context) error {
	return follow.Retry(ctx, time.Second, w.logger, "audit witness", func(ctx context.Context) error {
		return follow.Follower{Log: rawLog{w.log}, Apply: w.apply}.Run(ctx, w.position.Load())
	})
}

func (w *Witness) apply(_ context.Context, recs []eventstore.Record) error {
	w.mu.Lock()
	for _, r := range recs {
		if org := r.Metadata.OrganizationID; r.Raw.Type == domain.TypeCheckpointSigned && org != "" {
			// The position alone matters to the next append (it expects it); the size
			// only says whether the tree grew since.
			var cp domain.CheckpointSigned
			if err := json.Unmarshal(r.Raw.Data, &cp); err != nil {
				w.logger.Warn("audit witness: a checkpoint it cannot read", "position", r.Sequence, "err", err)
			}
			w.signed[org] = signedAt{size: cp.Size, position: r.Sequence}
		}
		w.trees.Grow(r, nil)
	}
	w.mu.Unlock()
	w.position.Advance(recs[len(recs)-1].Sequence)
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

// Unsigned lists the trees that grew past their latest checkpoint, in id order.
func (w *Witness) Unsigned(context.Context) ([]projections.TreeHead, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var heads []projections.TreeHead
	for org, tree := range w.trees {
		if tree.End() > w.signed[org].size {
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
	return projections.TreeHead{OrganizationID: org, Size: tree.End(), Root: root, CheckpointSize: cp.size, CheckpointPosition: cp.position}
}
