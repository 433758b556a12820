package commands

import (
	"context"
	"time"

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
	return a.issueAccessKey(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization, id, hash string, at time.Time) ([]domain.Event, error) {
		return o.CreateAccessKey(cmd.AccountID, id, hash, at)
	})
}

// issueAccessKey generates an access key secret, lets decide give it to the account
// (a creation or a rotation) and returns it with the account's key as it now stands.
// The secret is in the result only: the log keeps its HMAC.
func (a *App) issueAccessKey(ctx context.Context, c Caller, accountID string,
	decide func(o *domain.Organization, id, hash string, at time.Time) ([]domain.Event, error)) (CreatedAccessKey, error) {
	cred, err := domain.GenerateCredential(a.deps.Random, domain.KindAccessSecret)
	if err != nil {
		return CreatedAccessKey{}, err
	}
	out := CreatedAccessKey{Secret: cred.String()}
	id := domain.NewAccessKeyID()
	at := a.now()
	hash := domain.HashCredential(a.deps.Pepper, cred)
	out.Version, _, err = a.orgs.update(ctx, c.OrganizationID, c.metadata(""), func(o *domain.Organization) ([]domain.Event, error) {
		return decide(o, id, hash, at)
	}, func(o *domain.Organization) {
		acc := a.accountResult(o, accountID)
		out.AccessKeyResult, out.ETag = *acc.AccessKey, acc.ETag
	})
	if err != nil {
		return CreatedAccessKey{}, err
	}
	a.deps.Index.Remember(hash, c.OrganizationID)
	return out, nil
}
