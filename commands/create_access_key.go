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
	AccessKeyResult
	Secret string
	// ETag is the account's entity tag; Version the log position of the write.
	ETag    string
	Version uint64
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
	out := CreatedAccessKey{Secret: cred.String()}
	id := domain.NewAccessKeyID()
	at := a.now()
	hash := domain.HashCredential(a.deps.Pepper, cred)
	out.Version, _, err = a.orgs.update(ctx, cmd.Caller.OrganizationID, cmd.Caller.metadata(""), func(o *domain.Organization) ([]domain.Event, error) {
		return o.CreateAccessKey(cmd.AccountID, id, hash, at)
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
