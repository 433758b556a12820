package commands

import (
	"context"
	"slices"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// UpdateAccount disables or enables a sub-account: a disabled account's access key
// stops working on the very next request.
type UpdateAccount struct {
	Caller    Caller
	AccountID string
	// Status is "enabled" or "disabled".
	Status  string
	IfMatch IfMatch
}

// UpdateAccount handles the command.
func (a *App) UpdateAccount(ctx context.Context, cmd UpdateAccount) (AccountResult, error) {
	status, err := domain.ParseStatus(cmd.Status)
	if err != nil {
		return AccountResult{}, err
	}
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return AccountResult{}, err
	}
	return a.changeAccount(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization) ([]domain.Event, error) {
		if err := a.accountPrecondition(o, cmd.AccountID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.SetAccountDisabled(cmd.AccountID, status == domain.StatusDisabled, a.now())
	})
}

// changeAccount runs an account decision and returns the account as it left it.
func (a *App) changeAccount(ctx context.Context, c Caller, accountID string, decide func(*domain.Organization) ([]domain.Event, error)) (AccountResult, error) {
	return a.changeAccountWith(ctx, c.metadata(""), accountID, decide)
}

func (a *App) changeAccountWith(ctx context.Context, meta domain.Metadata, accountID string, decide func(*domain.Organization) ([]domain.Event, error)) (AccountResult, error) {
	var out AccountResult
	version, _, err := a.orgs.update(ctx, meta.OrganizationID, meta, decide, func(o *domain.Organization) {
		out = a.accountResult(o, accountID)
	})
	out.Version = version
	return out, err
}

// accountResult is an account of the organization as it is now, with its effective
// permissions (the primary account holds every item).
func (a *App) accountResult(o *domain.Organization, accountID string) AccountResult {
	return a.accountResultAt(o, accountID, a.now())
}

// accountResultAt is the account as it stands at an instant: a rotated-away key is
// shown while its grace period still ran then.
func (a *App) accountResultAt(o *domain.Organization, accountID string, at time.Time) AccountResult {
	acc, _ := o.Account(accountID)
	r := AccountResult{AccountID: acc.ID, OrganizationID: o.ID(), Name: acc.Name, Primary: acc.Primary,
		Status: status(acc.Disabled), CreatedAt: acc.CreatedAt, ETag: a.ETag(acc.ID, acc.Version), Permissions: []string{},
		CreatedBy: actorOf(o, acc.CreatedBy), UpdatedBy: actorOf(o, acc.UpdatedBy)}
	if acc.AccessKeyID != "" {
		r.AccessKey = &AccessKeyResult{AccessKeyID: acc.AccessKeyID, AccountID: acc.ID, Status: status(acc.AccessKeyDisabled), CreatedAt: acc.AccessKeyCreatedAt,
			CreatedBy: actorOf(o, acc.AccessKeyCreatedBy), UpdatedBy: actorOf(o, acc.AccessKeyUpdatedBy)}
		if acc.PreviousActiveAt(at) {
			r.AccessKey.PreviousAccessKeyID, r.AccessKey.PreviousUntil = acc.PreviousAccessKeyID, acc.PreviousUntil
		}
	}
	for _, p := range o.Permissions(acc.ID) {
		r.Permissions = append(r.Permissions, p.String())
	}
	slices.Sort(r.Permissions)
	return r
}

func status(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}
