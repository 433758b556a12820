package auditlog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/keyledger/keyledger/audit"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// Trees are the organizations' trees as the log gives them (Witness).
type Trees interface {
	Head(ctx context.Context, orgID string) (projections.TreeHead, error)
	Unsigned(ctx context.Context) ([]projections.TreeHead, error)
	// CaughtUp waits until the trees hold the log as it stands now.
	CaughtUp(ctx context.Context) error
}

// Appender appends to the log.
type Appender interface {
	Append(ctx context.Context, kind, id string, expected uint64, events []domain.Event, meta domain.Metadata) (uint64, error)
}

// CheckpointerConfig configures the checkpoints.
type CheckpointerConfig struct {
	Signer *audit.Signer
	// Origin is the checkpoints' origin prefix; an organization's log is
	// "<Origin>/<organization id>".
	Origin string
	// Every is how often the trees that grew get a checkpoint (default 1 minute).
	Every  time.Duration
	Clock  func() time.Time
	Logger *slog.Logger
}

// DefaultOrigin prefixes the checkpoints' origins unless configured otherwise.
const DefaultOrigin = "keyledger"

// ActorCheckpointer is the actor of the checkpoint events.
const ActorCheckpointer = "system:audit"

// Checkpointer signs the trees that grew, as the log gives them (not as the views
// hold them), and appends their checkpoints to the log
// (keyledger.events.checkpoint.<organization id>). Every instance runs one; the
// append expects the subject's last checkpoint, so when two sign the same tree one
// append wins and the other is a conflict, dropped.
type Checkpointer struct {
	cfg   CheckpointerConfig
	trees Trees
	log   Appender
}

// NewCheckpointer returns a checkpointer.
func NewCheckpointer(cfg CheckpointerConfig, trees Trees, log Appender) *Checkpointer {
	if cfg.Every == 0 {
		cfg.Every = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Checkpointer{cfg: cfg, trees: trees, log: log}
}

// ErrSigningOff: no signing key is configured, so no checkpoint is signed.
var ErrSigningOff = errors.New("audit: no signing key is configured; checkpoints are off")

// Run signs the trees that grew every cfg.Every until ctx ends (at once when no
// signing key is configured).
func (c *Checkpointer) Run(ctx context.Context) error {
	if c.cfg.Signer == nil {
		return nil
	}
	t := time.NewTicker(c.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		heads, err := c.trees.Unsigned(ctx)
		if err != nil {
			c.cfg.Logger.Warn("audit checkpoints: reading the trees", "err", err)
			continue
		}
		for _, h := range heads {
			if _, err := c.Sign(ctx, h); err != nil && !errors.Is(err, domain.ErrConflict) {
				c.cfg.Logger.Warn("audit checkpoint not published", "organization_id", h.OrganizationID, "size", h.Size, "err", err)
			}
		}
	}
}

// Current is the organization's tree as the log stands now.
func (c *Checkpointer) Current(ctx context.Context, orgID string) (projections.TreeHead, error) {
	if c.cfg.Signer == nil { // no trees are kept
		return projections.TreeHead{}, ErrSigningOff
	}
	if err := c.trees.CaughtUp(ctx); err != nil {
		return projections.TreeHead{}, err
	}
	return c.trees.Head(ctx, orgID)
}

// Sign signs the tree's head and appends the checkpoint, returning its log
// position. Another instance having signed since the head was read is
// domain.ErrConflict.
func (c *Checkpointer) Sign(ctx context.Context, h projections.TreeHead) (uint64, error) {
	if c.cfg.Signer == nil {
		return 0, ErrSigningOff
	}
	note, err := c.cfg.Signer.Sign(audit.Origin(c.cfg.Origin, h.OrganizationID), h.Size, h.Root, h.CheckpointSize, h.Position)
	if err != nil {
		return 0, err
	}
	cp := domain.CheckpointSigned{Size: h.Size, RootHash: h.Root, Note: note, Border: h.Border, At: c.cfg.Clock().UTC().Truncate(time.Microsecond)}
	return c.log.Append(ctx, domain.AggregateCheckpoint, h.OrganizationID, h.CheckpointPosition, []domain.Event{cp},
		domain.Metadata{OrganizationID: h.OrganizationID, ActorID: ActorCheckpointer})
}

// Origin is the origin of an organization's checkpoints.
func (c *Checkpointer) Origin(orgID string) string { return audit.Origin(c.cfg.Origin, orgID) }
