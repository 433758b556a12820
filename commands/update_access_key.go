package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// UpdateAccessKey disables or enables an account's access key; a disabled key stops
// authenticating on the very next request.
type UpdateAccessKey struct {
	Caller    Caller
	AccountID string
	// Status is "enabled" or "disabled".
	Status string
	// IfMatch is checked against the account's entity tag (its access key is part
	// of the account).
	IfMatch IfMatch
}

// UpdateAccessKey handles the command.
func (a *App) UpdateAccessKey(ctx context.Context, cmd UpdateAccessKey) (AccountResult, error) {
	status, err := domain.ParseStatus(cmd.Status)
	if err != nil {
		return AccountResult{}, err
	}
	if err := cmd.Caller.onAccessKey(cmd.AccountID, domain.ActionUpdate); err != nil {
		return AccountResult{}, err
	}
	return a.changeAccount(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization) ([]domain.Event, error) {
		if err := a.accountPrecondition(o, cmd.AccountID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.SetAccessKeyDisabled(cmd.AccountID, status == domain.StatusDisabled, a.now())
	})
}
