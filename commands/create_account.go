package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// CreateAccount adds a sub-account to the caller's organization.
type CreateAccount struct {
	Caller      Caller
	Idempotency Idempotency
	Name        string
}

// AccountResult is the account as the write left it.
type AccountResult struct {
	AccountID      string           `json:"account_id"`
	OrganizationID string           `json:"organization_id"`
	Name           string           `json:"name"`
	Primary        bool             `json:"primary"`
	Status         string           `json:"status"`
	AccessKey      *AccessKeyResult `json:"access_key"`
	CreatedAt      string           `json:"created_at"`
	Version        uint64           `json:"version"`
	// Replayed is set when this answers a retry with an earlier request's result.
	Replayed bool `json:"-"`
}

// AccessKeyResult is an account's access key without its secret.
type AccessKeyResult struct {
	AccessKeyID string `json:"access_key_id"`
	Status      string `json:"status"`
}

// CreateAccount handles the command.
func (a *App) CreateAccount(ctx context.Context, cmd CreateAccount) (AccountResult, error) {
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[AccountResult]{
		authorize: func() error { return cmd.Caller.can(domain.PermOrganizationAdmin) },
		run:       func() (AccountResult, error) { return a.createAccount(ctx, cmd) },
	})
	r.Replayed = replayed
	return r, err
}

func (a *App) createAccount(ctx context.Context, cmd CreateAccount) (AccountResult, error) {
	id := domain.NewAccountID()
	at := a.now()
	org := cmd.Caller.OrganizationID
	version, events, err := a.orgs.update(ctx, org, cmd.Caller.metadata(""), nil, func(o *domain.Organization) ([]domain.Event, error) {
		return o.CreateAccount(id, cmd.Name, at)
	})
	if err != nil {
		return AccountResult{}, err
	}
	e := events[0].(domain.AccountCreated)
	return AccountResult{AccountID: id, OrganizationID: org, Name: e.Name, Status: "enabled", CreatedAt: at.Format(timeFormat), Version: version}, nil
}
