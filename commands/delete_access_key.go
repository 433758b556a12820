package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// DeleteAccessKey deletes an account's access key for good; the account may then
// get a new one.
type DeleteAccessKey struct {
	Caller    Caller
	AccountID string
	// IfMatch is checked against the account's entity tag.
	IfMatch IfMatch
}

// DeleteAccessKey handles the command.
func (a *App) DeleteAccessKey(ctx context.Context, cmd DeleteAccessKey) (uint64, error) {
	if err := cmd.Caller.onAccessKey(cmd.AccountID, domain.ActionDelete); err != nil {
		return 0, err
	}
	r, err := a.changeAccount(ctx, cmd.Caller, cmd.AccountID, func(o *domain.Organization) ([]domain.Event, error) {
		if err := a.accountPrecondition(o, cmd.AccountID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.DeleteAccessKey(cmd.AccountID, a.now())
	})
	return r.Version, err
}
