package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
)

// Handlers of accounts, access keys, roles and /v1/me.

func accountID(c echo.Context) (string, error) {
	return pathID(c, "id", domain.IsAccountID, domain.ErrAccountNotFound)
}

func (s *Server) getAccount(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	a, err := s.d.Accounts.Get(c.Request().Context(), caller(c).OrganizationID, id)
	if err != nil {
		return err
	}
	return respond(c, 200, a)
}

func (s *Server) updateAccount(c echo.Context) error {
	return s.setStatus(c, func(cl commands.Caller, id string, disabled bool) (commands.AccountResult, error) {
		return s.d.App.UpdateAccount(c.Request().Context(), commands.UpdateAccount{Caller: cl, AccountID: id, Disabled: disabled})
	})
}

// setStatus is the shape of PATCH {"status"} on an account or its access key: a
// narrowing change, so this instance's index applies it before the answer.
func (s *Server) setStatus(c echo.Context, run func(commands.Caller, string, bool) (commands.AccountResult, error)) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	var req StatusRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	disabled, err := req.disabled()
	if err != nil {
		return err
	}
	r, err := run(caller(c), id, disabled)
	if err != nil {
		return err
	}
	written(c, r.Version)
	s.revoked(c, r.Version)
	return respond(c, 200, r)
}

func (s *Server) createAccessKey(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	r, err := s.d.App.CreateAccessKey(c.Request().Context(), commands.CreateAccessKey{Caller: caller(c), AccountID: id})
	if err != nil {
		return err
	}
	written(c, r.Version)
	c.Response().Header().Set("Location", "/v1/accounts/"+id)
	c.Response().Header().Set("Cache-Control", "no-store")
	return respond(c, http.StatusCreated, CreatedAccessKey{AccountID: id, AccessKeyID: r.AccessKeyID, Secret: r.Secret, Status: "enabled", CreatedAt: r.CreatedAt})
}

func (s *Server) updateAccessKey(c echo.Context) error {
	return s.setStatus(c, func(cl commands.Caller, id string, disabled bool) (commands.AccountResult, error) {
		return s.d.App.UpdateAccessKey(c.Request().Context(), commands.UpdateAccessKey{Caller: cl, AccountID: id, Disabled: disabled})
	})
}

func (s *Server) deleteAccessKey(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	version, err := s.d.App.DeleteAccessKey(c.Request().Context(), commands.DeleteAccessKey{Caller: caller(c), AccountID: id})
	if err != nil {
		return err
	}
	written(c, version)
	s.revoked(c, version)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) me(c echo.Context) error {
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	cl := caller(c)
	ids, err := s.d.Workspaces.MemberOf(c.Request().Context(), cl.OrganizationID, cl.AccountID, cl.Primary)
	if err != nil {
		return err
	}
	me, err := s.d.App.Me(c.Request().Context(), cl, ids)
	if err != nil {
		return err
	}
	return respond(c, 200, me)
}

func roleID(c echo.Context) (string, error) {
	return pathID(c, "id", domain.IsRoleID, domain.ErrRoleNotFound)
}

func (req RoleRequest) input() commands.RoleInput {
	return commands.RoleInput{Name: req.Name, Permissions: req.Permissions, Users: req.Users}
}

func (s *Server) createRole(c echo.Context) error {
	var req RoleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	r, err := s.d.App.CreateRole(c.Request().Context(), commands.CreateRole{Caller: caller(c), Idempotency: idem, Role: req.input()})
	if err != nil {
		return err
	}
	written(c, r.Version)
	replayed(c, r.Replayed)
	c.Response().Header().Set("Location", "/v1/roles/"+r.RoleID)
	return respond(c, http.StatusCreated, r)
}

func (s *Server) listRoles(c echo.Context) error {
	cl := caller(c)
	if !cl.Primary { // roles are organization administration
		return &domain.ForbiddenError{Missing: domain.PermOrganizationAdmin}
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	items, err := s.d.Roles.List(c.Request().Context(), cl.OrganizationID)
	if err != nil {
		return err
	}
	return respond(c, 200, RoleList{Items: items})
}

func (s *Server) updateRole(c echo.Context) error {
	id, err := roleID(c)
	if err != nil {
		return err
	}
	var req RoleRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	r, err := s.d.App.UpdateRole(c.Request().Context(), commands.UpdateRole{Caller: caller(c), RoleID: id, Role: req.input()})
	if err != nil {
		return err
	}
	written(c, r.Version)
	return respond(c, 200, r)
}

func (s *Server) deleteRole(c echo.Context) error {
	id, err := roleID(c)
	if err != nil {
		return err
	}
	version, err := s.d.App.DeleteRole(c.Request().Context(), commands.DeleteRole{Caller: caller(c), RoleID: id})
	if err != nil {
		return err
	}
	written(c, version)
	return c.NoContent(http.StatusNoContent)
}
