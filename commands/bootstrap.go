package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// Bootstrap creates an organization with its primary account and that account's
// access key. It is the only command without a caller: operators run it.
type Bootstrap struct {
	OrganizationName string
	PrimaryName      string
}

// Bootstrapped holds the access key secret, shown once and never stored.
type Bootstrapped struct {
	OrganizationID string
	AccountID      string
	AccessKeyID    string
	Secret         string
	Version        uint64
}

// Bootstrap handles the command.
func (a *App) Bootstrap(ctx context.Context, cmd Bootstrap) (Bootstrapped, error) {
	cred, err := domain.GenerateCredential(a.deps.Random, domain.KindAccessSecret)
	if err != nil {
		return Bootstrapped{}, err
	}
	out := Bootstrapped{
		OrganizationID: domain.NewOrganizationID(), AccountID: domain.NewAccountID(),
		AccessKeyID: domain.NewAccessKeyID(), Secret: cred.String(),
	}
	meta := domain.Metadata{OrganizationID: out.OrganizationID, ActorID: "system:bootstrap"}
	hash := domain.HashCredential(a.deps.Pepper, cred)
	out.Version, _, err = a.orgs.update(ctx, out.OrganizationID, meta, func(o *domain.Organization) ([]domain.Event, error) {
		return o.Create(cmd.OrganizationName, out.AccountID, cmd.PrimaryName, out.AccessKeyID, hash, a.now())
	})
	if err != nil {
		return Bootstrapped{}, err
	}
	if a.deps.Index != nil { // the bootstrap command runs without an index
		a.deps.Index.Remember(hash, out.OrganizationID)
	}
	return out, nil
}
