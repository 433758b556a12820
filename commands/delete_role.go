package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// DeleteRole deletes a role; its users lose what it granted on the next request.
type DeleteRole struct {
	Caller Caller
	RoleID string
	// IfMatch is checked against the role's own entity tag.
	IfMatch IfMatch
}

// DeleteRole handles the command.
func (a *App) DeleteRole(ctx context.Context, cmd DeleteRole) (uint64, error) {
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return 0, err
	}
	version, _, err := a.orgs.update(ctx, cmd.Caller.OrganizationID, cmd.Caller.metadata(""), func(o *domain.Organization) ([]domain.Event, error) {
		if err := a.rolePrecondition(o, cmd.RoleID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.DeleteRole(cmd.RoleID, a.now())
	})
	return version, err
}
