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
}

// RotateAccessKey handles the command: the primary rotates any account's key, a
// sub-account its own with access_key:update.
func (a *App) RotateAccessKey(ctx context.Context, cmd RotateAccessKey) (CreatedAccessKey, error) {
	if err := cmd.Caller.onAccessKey(cmd.AccountID, domain.ActionUpdate); err != nil {
		return CreatedAccessKey{}, err
	}
	cred, err := domain.GenerateCredential(a.deps.Random, domain.KindAccessSecret)
	if err != nil {
		return CreatedAccessKey{}, err
	}
	out := CreatedAccessKey{Secret: cred.String()}
	id := domain.NewAccessKeyID()
	at := a.now()
	hash := domain.HashCredential(a.deps.Pepper, cred)
	out.Version, _, err = a.orgs.update(ctx, cmd.Caller.OrganizationID, cmd.Caller.metadata(""), func(o *domain.Organization) ([]domain.Event, error) {
		return o.RotateAccessKey(cmd.AccountID, id, hash, cmd.Grace, at)
	}, func(o *domain.Organization) {
		acc := a.accountResult(o, cmd.AccountID)
		out.AccessKeyResult, out.ETag = *acc.AccessKey, acc.ETag
	})
	if err != nil {
		return CreatedAccessKey{}, err
	}
	a.deps.Index.Remember(hash, cmd.Caller.OrganizationID)
	return out, nil
}
