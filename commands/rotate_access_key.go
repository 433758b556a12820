package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// RotateAccessKey replaces an account's access key (the primary account's
// included) by a new one whose secret is in the result only. The old secret stops
// at once, or after Grace (at most domain.MaxRotationGrace), during which both work.
type RotateAccessKey struct {
	Caller    Caller
	AccountID string
	Grace     time.Duration
	// IfMatch is checked against the account's entity tag (its access key is part
	// of it).
	IfMatch IfMatch
}

// RotateAccessKey handles the command: the primary rotates any account's key, a
// sub-account its own with access_key:update.
func (a *App) RotateAccessKey(ctx context.Context, cmd RotateAccessKey) (CreatedAccessKey, error) {
	if err := cmd.Caller.onAccessKey(cmd.AccountID, domain.ActionUpdate); err != nil {
		return CreatedAccessKey{}, err
	}
	return a.issueAccessKey(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization, id, hash string, at time.Time) ([]domain.Event, error) {
		if err := a.accountPrecondition(o, cmd.AccountID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.RotateAccessKey(cmd.AccountID, id, hash, cmd.Grace, at)
	})
}
