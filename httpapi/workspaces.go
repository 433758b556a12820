package httpapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
	"github.com/labstack/echo/v4"
)

// Handlers of workspaces and their members.

// workspaceRoutes are the routes of workspaces and their members.
func (s *Server) workspaceRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/workspaces", id: "createWorkspace", summary: "Create a workspace", auth: true,
			request: CreateWorkspaceRequest{}, status: 201, response: Workspace{}, headers: idemHeader, handler: s.createWorkspace},
		{method: "GET", path: "/v1/workspaces", id: "listWorkspaces", summary: "List workspaces", auth: true,
			status: 200, response: WorkspaceList{}, query: pageParams, headers: readHeader, handler: s.listWorkspaces},
		{method: "GET", path: "/v1/workspaces/:ws", id: "getWorkspace", summary: "Read a workspace", auth: true,
			status: 200, response: Workspace{}, headers: readHeader, query: asOfQuery, handler: s.getWorkspace},
		{method: "PATCH", path: "/v1/workspaces/:ws", id: "updateWorkspace", summary: "Rename a workspace or change its description", auth: true,
			request: UpdateWorkspaceRequest{}, status: 200, response: Workspace{}, headers: matchHdr, handler: s.updateWorkspace},
		{method: "GET", path: "/v1/workspaces/:ws/members", id: "listMembers", summary: "List the accounts authorized on a workspace", auth: true,
			status: 200, response: MemberList{}, headers: readHeader, handler: s.listMembers,
			query: append([]param{{name: "include", description: `"candidates" adds the organization's sub-accounts not authorized there (needs workspace:update and account:read)`,
				enum: []string{"candidates"}}}, asOfQuery...)},
		{method: "PUT", path: "/v1/workspaces/:ws/members", id: "putMembers", summary: "Replace the member set (Save)", auth: true,
			request: PutMembersRequest{}, status: 200, response: MemberList{}, headers: revokeHdr, handler: s.putMembers},
	}
}

func (s *Server) createWorkspace(c echo.Context) error {
	return write(s, c, func(req CreateWorkspaceRequest) (reply, error) {
		idem, err := idempotency(c, req)
		if err != nil {
			return reply{}, err
		}
		r, err := s.d.App.CreateWorkspace(c.Request().Context(), commands.CreateWorkspace{
			Caller: caller(c), Idempotency: idem, Name: req.Name, Description: req.Description})
		return reply{status: http.StatusCreated, body: workspaceOfResult(r), version: r.Version, etag: r.ETag,
			location: "/v1/workspaces/" + r.WorkspaceID, replayed: r.Replayed}, err
	})
}

func (s *Server) listWorkspaces(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	cl := caller(c)
	ctx := c.Request().Context()
	if cl.Primary {
		items, next, err := s.d.Views.Workspaces(ctx, cl.OrganizationID, p)
		if err != nil {
			return err
		}
		return respond(c, 200, workspaceList(items, next))
	}
	// A sub-account sees the workspaces it is authorized on (directly or through a
	// role; no permission needed), each confirmed against the log.
	items, next, err := s.d.Views.WorkspacesOfMember(ctx, cl.OrganizationID, cl.AccountID, p)
	if err != nil {
		return err
	}
	ids := make([]string, len(items))
	for i, w := range items {
		ids[i] = w.ID
	}
	readable, err := s.d.App.MemberWorkspaces(ctx, cl, ids)
	if err != nil {
		return err
	}
	kept := items[:0]
	for _, w := range items {
		if slices.Contains(readable, w.ID) {
			kept = append(kept, w)
		}
	}
	return respond(c, 200, workspaceList(kept, next))
}

func workspaceList(rows []projections.WorkspaceRow, next string) WorkspaceList {
	out := WorkspaceList{Items: make([]Workspace, len(rows)), NextCursor: next}
	for i, w := range rows {
		out.Items[i] = workspaceOfRow(w)
	}
	return out
}

func (s *Server) getWorkspace(c echo.Context) error {
	// A workspace's own fields need membership alone; its past (as_of) workspace:read.
	ws, err := s.workspaceFor(c, s.d.App.AuthorizeMember)
	if err != nil {
		return err
	}
	if t, ok, err := asOf(c); ok || err != nil {
		if err != nil {
			return err
		}
		if err := caller(c).Can(commands.PermWorkspaceRead); err != nil {
			return err
		}
		r, err := s.d.App.WorkspaceAt(c.Request().Context(), caller(c), ws, t)
		return answerAt(c, r.ETag, workspaceOfResult(r), err)
	}
	w, err := s.d.Views.Workspace(c.Request().Context(), caller(c).OrganizationID, ws)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(w.ID, w.Version))
	return respond(c, 200, workspaceOfRow(w))
}

func (s *Server) updateWorkspace(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	return write(s, c, func(req UpdateWorkspaceRequest) (reply, error) {
		r, err := s.d.App.UpdateWorkspace(c.Request().Context(), commands.UpdateWorkspace{
			Caller: caller(c), WorkspaceID: ws, Name: req.Name, Description: req.Description, IfMatch: ifMatch(c)})
		return reply{status: http.StatusOK, body: workspaceOfResult(r), version: r.Version, etag: r.ETag}, err
	})
}

func (s *Server) listMembers(c echo.Context) error {
	ws, err := s.readableWorkspace(c, commands.PermWorkspaceRead)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	candidates := false
	switch include := c.QueryParam("include"); include {
	case "":
	case "candidates":
		candidates = true
	default:
		return invalidField("include", "unknown_value", `the only value is "candidates"`)
	}
	if t, ok, err := asOf(c); ok || err != nil {
		if err != nil {
			return err
		}
		if candidates {
			return invalidField("include", "not_with_as_of", "candidates are listed for the current member set only")
		}
		r, err := s.d.App.MembersAt(ctx, caller(c), ws, t)
		return answerAt(c, r.ETag, membersOfResult(r), err)
	}
	if candidates && !caller(c).Primary { // whoever may Save and see the accounts
		if err := caller(c).Can(commands.PermAccountRead); err != nil {
			return err
		}
		if err := s.d.App.AuthorizeWorkspace(ctx, caller(c), ws, commands.PermWorkspaceUpdate); err != nil {
			return err
		}
	}
	w, err := s.d.Views.Workspace(ctx, caller(c).OrganizationID, ws)
	if err != nil {
		return err
	}
	items, err := s.d.Views.Members(ctx, caller(c).OrganizationID, ws)
	if err != nil {
		return err
	}
	out := membersOfRows(items)
	if candidates {
		rows, err := s.d.Views.MemberCandidates(ctx, caller(c).OrganizationID, ws)
		if err != nil {
			return err
		}
		list := make([]Candidate, len(rows))
		for i, r := range rows {
			list[i] = Candidate{AccountID: r.AccountID, Name: r.Name}
		}
		out.Candidates = &list
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(commands.MembersResource(w.ID), w.MembersVersion))
	return respond(c, 200, out)
}

func (s *Server) putMembers(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	return write(s, c, func(req PutMembersRequest) (reply, error) {
		if req.AccountIDs == nil {
			return reply{}, invalidField("account_ids", "required", "give the whole new member set (an empty list removes everyone)")
		}
		r, err := s.d.App.SetMembers(c.Request().Context(), commands.SetMembers{Caller: caller(c), WorkspaceID: ws, AccountIDs: req.AccountIDs, IfMatch: ifMatch(c)})
		return reply{status: http.StatusOK, body: membersOfResult(r), version: r.Version, etag: r.ETag, revoking: true}, err
	})
}

// readableWorkspace checks the path's workspace id, waits for a requested position,
// and, for a sub-account, authorizes p on the workspace as loaded from the log (for
// the primary account the views' organization filter is the check).
func (s *Server) readableWorkspace(c echo.Context, p domain.Permission) (string, error) {
	return s.workspaceFor(c, func(ctx context.Context, cl commands.Caller, ws string) error {
		return s.d.App.AuthorizeWorkspace(ctx, cl, ws, p)
	})
}

// workspaceFor is readableWorkspace with the sub-account's check given.
func (s *Server) workspaceFor(c echo.Context, authorize func(context.Context, commands.Caller, string) error) (string, error) {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return "", err
	}
	if cl := caller(c); !cl.Primary {
		if err := authorize(c.Request().Context(), cl, ws); err != nil {
			return "", err
		}
	}
	return ws, s.awaitPosition(c)
}
