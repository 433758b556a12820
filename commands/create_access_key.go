package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// CreateAccessKey gives an account its one access key. The secret is in the result
// only: the log keeps its HMAC.
type CreateAccessKey struct {
	Caller    Caller
	AccountID string
}

// CreatedAccessKey is the new key; Secret is shown once.
type CreatedAccessKey struct {
	AccountID   string
	AccessKeyID string
	Secret      string
	CreatedAt   string
	Version     uint64
}

// CreateAccessKey handles the command: a second key while one exists is
// domain.ErrAccessKeyExists, also under concurrent requests (one aggregate, one
// expected version).
func (a *App) CreateAccessKey(ctx context.Context, cmd CreateAccessKey) (CreatedAccessKey, error) {
	if err := cmd.Caller.onAccessKey(cmd.AccountID, domain.ActionCreate); err != nil {
		return CreatedAccessKey{}, err
	}
	cred, err := domain.GenerateCredential(a.deps.Random, domain.KindAccessSecret)
	if err != nil {
		return CreatedAccessKey{}, err
	}
	out := CreatedAccessKey{AccountID: cmd.AccountID, AccessKeyID: domain.NewAccessKeyID(), Secret: cred.String()}
	at := a.now()
	out.CreatedAt = at.Format(timeFormat)
	hash := domain.HashCredential(a.deps.Pepper, cred)
	out.Version, _, err = a.orgs.update(ctx, cmd.Caller.OrganizationID, cmd.Caller.metadata(""), nil, func(o *domain.Organization) ([]domain.Event, error) {
		return o.CreateAccessKey(cmd.AccountID, out.AccessKeyID, hash, at)
	})
	if err != nil {
		return CreatedAccessKey{}, err
	}
	a.deps.Index.Remember(hash, cmd.Caller.OrganizationID)
	return out, nil
}
