package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// DeleteRole deletes a role; its users lose what it granted on the next request.
type DeleteRole struct {
	Caller Caller
	RoleID string
}

// DeleteRole handles the command.
func (a *App) DeleteRole(ctx context.Context, cmd DeleteRole) (uint64, error) {
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return 0, err
	}
	version, _, err := a.orgs.update(ctx, cmd.Caller.OrganizationID, cmd.Caller.metadata(""), nil, func(o *domain.Organization) ([]domain.Event, error) {
		return o.DeleteRole(cmd.RoleID, a.now())
	})
	return version, err
}
