package commands

import (
	"context"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// CreateRole creates a role of the caller's organization with its permission items
// and users, in one atomic append.
type CreateRole struct {
	Caller      Caller
	Idempotency Idempotency
	Role        RoleInput
}

// CreateRole handles the command.
func (a *App) CreateRole(ctx context.Context, cmd CreateRole) (RoleResult, error) {
	if err := cmd.Caller.can(domain.PermOrganizationAdmin); err != nil {
		return RoleResult{}, err
	}
	spec, err := cmd.Role.validate()
	if err != nil {
		return RoleResult{}, err
	}
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[RoleResult]{
		authorize: func() error { return cmd.Caller.can(domain.PermOrganizationAdmin) },
		run: func() (RoleResult, error) {
			id := domain.NewRoleID()
			return a.changeRole(ctx, cmd.Caller, id, func(o *domain.Organization) ([]domain.Event, error) {
				return o.CreateRole(id, spec, a.now())
			})
		},
	})
	r.Replayed = replayed
	return r, err
}

// changeRole runs a role decision and returns the role as it left it.
func (a *App) changeRole(ctx context.Context, c Caller, roleID string, decide func(*domain.Organization) ([]domain.Event, error)) (RoleResult, error) {
	var out RoleResult
	version, _, err := a.orgs.update(ctx, c.OrganizationID, c.metadata(""), decide, func(o *domain.Organization) {
		if r, ok := o.RoleByID(roleID); ok {
			out = a.roleResult(r)
		}
	})
	out.Version = version
	return out, err
}

func itoa(i int) string { return strconv.Itoa(i) }
