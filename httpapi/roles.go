package httpapi

import (
	"net/http"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/labstack/echo/v4"
)

// Handlers of roles.

// roleRoutes are the routes of roles.
func (s *Server) roleRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/roles", id: "createRole", summary: "Create a role", auth: true,
			request: RoleRequest{}, status: 201, response: Role{}, headers: idemHeader, handler: s.createRole},
		{method: "GET", path: "/v1/roles", id: "listRoles", summary: "List roles", auth: true,
			status: 200, response: RoleList{}, headers: readHeader, handler: s.listRoles},
		{method: "GET", path: "/v1/roles/:id", id: "getRole", summary: "Read a role", auth: true,
			status: 200, response: Role{}, headers: readHeader, query: asOfQuery, handler: s.getRole},
		{method: "PATCH", path: "/v1/roles/:id", id: "updateRole", summary: "Rename a role or replace its permissions, users or workspaces", auth: true,
			request: RoleRequest{}, status: 200, response: Role{}, headers: revokeHdr, handler: s.updateRole},
		{method: "DELETE", path: "/v1/roles/:id", id: "deleteRole", summary: "Delete a role", auth: true,
			status: 204, headers: revokeHdr, handler: s.deleteRole},
	}
}

func roleID(c echo.Context) (string, error) {
	return pathID(c, "id", domain.IsRoleID, domain.ErrRoleNotFound)
}

func (req RoleRequest) input() commands.RoleInput {
	return commands.RoleInput{Name: req.Name, Permissions: req.Permissions, Users: req.Users, Workspaces: req.Workspaces}
}

func (s *Server) createRole(c echo.Context) error {
	return write(s, c, func(req RoleRequest) (reply, error) {
		idem, err := idempotency(c, req)
		if err != nil {
			return reply{}, err
		}
		r, err := s.d.App.CreateRole(c.Request().Context(), commands.CreateRole{Caller: caller(c), Idempotency: idem, Role: req.input()})
		return reply{status: http.StatusCreated, body: roleOfResult(r), version: r.Version, etag: r.ETag,
			location: "/v1/roles/" + r.RoleID, replayed: r.Replayed}, err
	})
}

// readsRoles: roles are organization administration.
func readsRoles(cl commands.Caller) error { return cl.Can(domain.PermOrganizationAdmin) }

func (s *Server) listRoles(c echo.Context) error {
	cl := caller(c)
	if err := readsRoles(cl); err != nil {
		return err
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	rows, err := s.d.Views.Roles(c.Request().Context(), cl.OrganizationID)
	if err != nil {
		return err
	}
	out := RoleList{Items: make([]Role, len(rows))}
	for i, r := range rows {
		out.Items[i] = roleOfRow(r)
	}
	return respond(c, 200, out)
}

func (s *Server) getRole(c echo.Context) error {
	id, err := roleID(c)
	if err != nil {
		return err
	}
	cl := caller(c)
	if err := readsRoles(cl); err != nil {
		return err
	}
	if t, ok, err := asOf(c); ok || err != nil {
		if err != nil {
			return err
		}
		r, err := s.d.App.RoleAt(c.Request().Context(), cl, id, t)
		return answerAt(c, r.ETag, roleOfResult(r), err)
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	r, err := s.d.Views.Role(c.Request().Context(), cl.OrganizationID, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(r.ID, r.Version))
	return respond(c, 200, roleOfRow(r))
}

func (s *Server) updateRole(c echo.Context) error {
	id, err := roleID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(req RoleRequest) (reply, error) {
		r, err := s.d.App.UpdateRole(c.Request().Context(), commands.UpdateRole{Caller: caller(c), RoleID: id, Role: req.input(), IfMatch: ifMatch(c)})
		return reply{status: http.StatusOK, body: roleOfResult(r), version: r.Version, etag: r.ETag, revoking: true}, err
	})
}

func (s *Server) deleteRole(c echo.Context) error {
	id, err := roleID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(struct{}) (reply, error) {
		version, err := s.d.App.DeleteRole(c.Request().Context(), commands.DeleteRole{Caller: caller(c), RoleID: id, IfMatch: ifMatch(c)})
		return reply{status: http.StatusNoContent, version: version, revoking: true}, err
	})
}
