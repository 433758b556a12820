package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// UpdateAccount disables or enables a sub-account: a disabled account's access key
// stops working on the very next request.
type UpdateAccount struct {
	Caller    Caller
	AccountID string
	Disabled  bool
}

// UpdateAccount handles the command.
func (a *App) UpdateAccount(ctx context.Context, cmd UpdateAccount) (AccountResult, error) {
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return AccountResult{}, err
	}
	return a.changeAccount(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization) ([]domain.Event, error) {
		return o.SetAccountDisabled(cmd.AccountID, cmd.Disabled, a.now())
	})
}

// changeAccount runs an account decision and returns the account as it left it.
func (a *App) changeAccount(ctx context.Context, c Caller, accountID string, decide func(*domain.Organization) ([]domain.Event, error)) (AccountResult, error) {
	var out AccountResult
	version, _, err := a.orgs.update(ctx, c.OrganizationID, c.metadata(""), nil, decide, func(o *domain.Organization) {
		acc, _ := o.Account(accountID)
		out = accountResult(o.ID(), acc)
	})
	out.Version = version
	return out, err
}

func accountResult(orgID string, acc domain.Account) AccountResult {
	r := AccountResult{AccountID: acc.ID, OrganizationID: orgID, Name: acc.Name, Primary: acc.Primary,
		Status: status(acc.Disabled), CreatedAt: acc.CreatedAt.Format(timeFormat)}
	if acc.AccessKeyID != "" {
		r.AccessKey = &AccessKeyResult{AccessKeyID: acc.AccessKeyID, Status: status(acc.AccessKeyDisabled)}
	}
	return r
}

func status(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}
