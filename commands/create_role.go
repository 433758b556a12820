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
	if err := a.knownWorkspaces(ctx, cmd.Caller, &spec); err != nil {
		return RoleResult{}, err
	}
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[RoleResult]{
		authorize: func() error { return cmd.Caller.can(domain.PermOrganizationAdmin) },
		run: func(name identity) (RoleResult, error) {
			id := domain.RoleIDOf(name.ulid("role", 0))
			meta := cmd.Caller.metadata("")
			meta.EventID = name.eventIDs()
			return a.changeRoleWith(ctx, meta, id, func(o *domain.Organization) ([]domain.Event, error) {
				if _, exists := o.RoleByID(id); (exists || o.RoleWasDeleted(id)) && name.set {
					return nil, errAlreadyApplied
				}
				return o.CreateRole(id, spec, a.now())
			})
		},
		find: func(name identity) (RoleResult, bool, error) {
			var out RoleResult
			id := domain.RoleIDOf(name.ulid("role", 0))
			err := a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, version uint64) error {
				if o.RoleWasDeleted(id) {
					return ErrIdempotentResultGone // created, then deleted: never again
				}
				if r, ok := o.RoleByID(id); ok {
					out = a.roleResult(o, r)
					out.Version = version
				}
				return nil
			})
			return out, out.RoleID != "", err
		},
	})
	r.Replayed = replayed
	return r, err
}

// changeRole runs a role decision and returns the role as it left it.
func (a *App) changeRole(ctx context.Context, c Caller, roleID string, decide func(*domain.Organization) ([]domain.Event, error)) (RoleResult, error) {
	return a.changeRoleWith(ctx, c.metadata(""), roleID, decide)
}

func (a *App) changeRoleWith(ctx context.Context, meta domain.Metadata, roleID string, decide func(*domain.Organization) ([]domain.Event, error)) (RoleResult, error) {
	var out RoleResult
	version, _, err := a.orgs.update(ctx, meta.OrganizationID, meta, decide, func(o *domain.Organization) {
		if r, ok := o.RoleByID(roleID); ok {
			out = a.roleResult(o, r)
		}
	})
	out.Version = version
	return out, err
}

func itoa(i int) string { return strconv.Itoa(i) }
