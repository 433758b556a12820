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
	// IfMatch is checked against the role's own entity tag.
	IfMatch IfMatch
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
	if err := a.knownWorkspaces(ctx, cmd.Caller, &spec); err != nil {
		return RoleResult{}, err
	}
	return a.changeRole(ctx, cmd.Caller, cmd.RoleID, func(o *domain.Organization) ([]domain.Event, error) {
		if err := a.rolePrecondition(o, cmd.RoleID, cmd.IfMatch); err != nil {
			return nil, err
		}
		return o.UpdateRole(cmd.RoleID, spec, a.now())
	})
}

// rolePrecondition checks If-Match against an existing role's own version; a
// missing role is left to the decision to name.
func (a *App) rolePrecondition(o *domain.Organization, roleID string, m IfMatch) error {
	r, ok := o.RoleByID(roleID)
	if !ok {
		return nil
	}
	return a.precondition(m, r.ID, r.Version)
}
