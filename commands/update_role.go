package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// UpdateRole renames a role and/or replaces its permission items or its users; only
// the difference becomes events, and it applies to the very next request.
type UpdateRole struct {
	Caller Caller
	RoleID string
	Role   RoleInput
}

// UpdateRole handles the command.
func (a *App) UpdateRole(ctx context.Context, cmd UpdateRole) (RoleResult, error) {
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return RoleResult{}, err
	}
	spec, err := cmd.Role.validate()
	if err != nil {
		return RoleResult{}, err
	}
	return a.changeRole(ctx, cmd.Caller, cmd.RoleID, func(o *domain.Organization) ([]domain.Event, error) {
		return o.UpdateRole(cmd.RoleID, spec, a.now())
	})
}
