package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
)

// Handlers of accounts, access keys and /v1/me.

// accountRoutes are the routes of accounts, their access keys and /v1/me.
func (s *Server) accountRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/accounts", id: "createAccount", summary: "Create a sub-account", auth: true,
			request: CreateAccountRequest{}, status: 201, response: Account{}, headers: idemHeader, handler: s.createAccount},
		{method: "GET", path: "/v1/accounts", id: "listAccounts", summary: "List the organization's accounts (only the caller's own without account:read)", auth: true,
			status: 200, response: AccountList{}, query: pageParams, headers: readHeader, handler: s.listAccounts},
		{method: "GET", path: "/v1/accounts/:id", id: "getAccount", summary: "Read an account, its access key (no secret) and effective permissions", auth: true,
			status: 200, response: Account{}, headers: readHeader, query: asOfQuery, handler: s.getAccount},
		{method: "PATCH", path: "/v1/accounts/:id", id: "updateAccount", summary: "Enable or disable a sub-account", auth: true,
			request: StatusRequest{}, status: 200, response: Account{}, headers: revokeHdr, handler: s.updateAccount},
		{method: "POST", path: "/v1/accounts/:id/access-key", id: "createAccessKey", summary: "Create the account's one access key (secret in this response only)", auth: true,
			status: 201, response: CreatedAccessKey{}, handler: s.createAccessKey},
		{method: "PATCH", path: "/v1/accounts/:id/access-key", id: "updateAccessKey", summary: "Enable or disable the account's access key", auth: true,
			request: StatusRequest{}, status: 200, response: AccessKey{}, headers: revokeHdr, handler: s.updateAccessKey},
		{method: "POST", path: "/v1/accounts/:id/access-key/rotate", id: "rotateAccessKey", summary: "Replace the account's access key (new secret in this response only); the old one stops at once or after a grace period", auth: true,
			request: RotateAccessKeyRequest{}, status: 200, response: CreatedAccessKey{}, headers: revokeHdr, handler: s.rotateAccessKey},
		{method: "DELETE", path: "/v1/accounts/:id/access-key", id: "deleteAccessKey", summary: "Delete the account's access key", auth: true,
			headers: revokeHdr, status: 204, handler: s.deleteAccessKey},
		{method: "GET", path: "/v1/accounts/:id/workspaces", id: "getAccountWorkspaces", summary: "The workspaces an account is a direct member of", auth: true,
			status: 200, response: AccountWorkspaces{}, headers: readHeader, handler: s.getAccountWorkspaces},
		{method: "PUT", path: "/v1/accounts/:id/workspaces", id: "putAccountWorkspaces", summary: "Replace the workspaces an account is a direct member of (all or nothing)", auth: true,
			request: AccountWorkspacesRequest{}, status: 200, response: AccountWorkspaces{}, headers: consistencyHdr, handler: s.putAccountWorkspaces},
		{method: "GET", path: "/v1/me", id: "me", summary: "The caller, its organization, effective permissions and workspaces", auth: true,
			status: 200, response: Me{}, headers: readHeader, handler: s.me},
	}
}

func accountID(c echo.Context) (string, error) {
	return pathID(c, "id", domain.IsAccountID, domain.ErrAccountNotFound)
}

func (s *Server) listAccounts(c echo.Context) error {
	p, err := page(c)
	if err != nil {
		return err
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	cl := caller(c)
	if cl.Can(commands.PermAccountRead) != nil { // only itself
		a, err := s.d.Views.Account(c.Request().Context(), cl.OrganizationID, cl.AccountID)
		if err != nil {
			return err
		}
		return respond(c, 200, AccountList{Items: []Account{accountOfRow(a)}})
	}
	rows, next, err := s.d.Views.Accounts(c.Request().Context(), cl.OrganizationID, p)
	if err != nil {
		return err
	}
	out := AccountList{Items: make([]Account, len(rows)), NextCursor: next}
	for i, r := range rows {
		out.Items[i] = accountOfRow(r)
	}
	return respond(c, 200, out)
}

func (s *Server) getAccount(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	if err := caller(c).ReadsAccount(id); err != nil {
		return err
	}
	if t, ok, err := asOf(c); ok || err != nil {
		if err != nil {
			return err
		}
		r, err := s.d.App.AccountAt(c.Request().Context(), caller(c), id, t)
		return answerAt(c, r.ETag, accountOfResult(r), err)
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	a, err := s.d.Views.Account(c.Request().Context(), caller(c).OrganizationID, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(a.ID, a.Version))
	return respond(c, 200, accountOfRow(a))
}

func (s *Server) createAccount(c echo.Context) error {
	return write(s, c, func(req CreateAccountRequest) (reply, error) {
		idem, err := idempotency(c, req)
		if err != nil {
			return reply{}, err
		}
		r, err := s.d.App.CreateAccount(c.Request().Context(), commands.CreateAccount{Caller: caller(c), Idempotency: idem, Name: req.Name})
		return reply{status: http.StatusCreated, body: accountOfResult(r), version: r.Version, etag: r.ETag,
			location: "/v1/accounts/" + r.AccountID, replayed: r.Replayed}, err
	})
}

func (s *Server) updateAccount(c echo.Context) error {
	return s.setStatus(c, func(cl commands.Caller, id, status string) (commands.AccountResult, error) {
		return s.d.App.UpdateAccount(c.Request().Context(), commands.UpdateAccount{Caller: cl, AccountID: id, Status: status, IfMatch: ifMatch(c)})
	}, func(r commands.AccountResult) any { return accountOfResult(r) })
}

func (s *Server) updateAccessKey(c echo.Context) error {
	return s.setStatus(c, func(cl commands.Caller, id, status string) (commands.AccountResult, error) {
		return s.d.App.UpdateAccessKey(c.Request().Context(), commands.UpdateAccessKey{Caller: cl, AccountID: id, Status: status, IfMatch: ifMatch(c)})
	}, func(r commands.AccountResult) any {
		if k := accountOfResult(r).AccessKey; k != nil {
			return *k
		}
		return nil
	})
}

// setStatus is the shape of PATCH {"status"} on an account or its access key: a
// narrowing change, so this instance's index applies it before the answer. The
// entity tag is the account's (the access key is part of it).
func (s *Server) setStatus(c echo.Context, run func(cl commands.Caller, accountID, status string) (commands.AccountResult, error), show func(commands.AccountResult) any) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(req StatusRequest) (reply, error) {
		r, err := run(caller(c), id, req.Status)
		return reply{status: http.StatusOK, body: show(r), version: r.Version, etag: r.ETag, revoking: true}, err
	})
}

func (s *Server) createAccessKey(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(struct{}) (reply, error) {
		r, err := s.d.App.CreateAccessKey(c.Request().Context(), commands.CreateAccessKey{Caller: caller(c), AccountID: id})
		k := r.AccessKeyResult
		return reply{status: http.StatusCreated, version: r.Version, etag: r.ETag, location: "/v1/accounts/" + id, secret: true,
			body: CreatedAccessKey{AccessKey: accessKeyOfResult(k), Secret: r.Secret}}, err
	})
}

func (s *Server) rotateAccessKey(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(req RotateAccessKeyRequest) (reply, error) {
		var grace time.Duration
		if g := req.GraceSeconds; g != nil {
			if *g < 0 || *g > int(domain.MaxRotationGrace/time.Second) {
				// Here, not only in the domain: a larger count overflows a Duration.
				return reply{}, invalidField("grace_seconds", "out_of_range", fmt.Sprintf("from 0 to %d seconds (%d h)",
					int(domain.MaxRotationGrace/time.Second), int(domain.MaxRotationGrace/time.Hour)))
			}
			grace = time.Duration(*g) * time.Second
		}
		r, err := s.d.App.RotateAccessKey(c.Request().Context(), commands.RotateAccessKey{Caller: caller(c), AccountID: id, Grace: grace, IfMatch: ifMatch(c)})
		return reply{status: http.StatusOK, version: r.Version, etag: r.ETag, secret: true, revoking: true,
			body: CreatedAccessKey{AccessKey: accessKeyOfResult(r.AccessKeyResult), Secret: r.Secret}}, err
	})
}

func (s *Server) deleteAccessKey(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(struct{}) (reply, error) {
		version, err := s.d.App.DeleteAccessKey(c.Request().Context(), commands.DeleteAccessKey{Caller: caller(c), AccountID: id, IfMatch: ifMatch(c)})
		return reply{status: http.StatusNoContent, version: version, revoking: true}, err
	})
}

func (s *Server) me(c echo.Context) error {
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	cl := caller(c)
	ids, err := s.d.Views.MemberOf(c.Request().Context(), cl.OrganizationID, cl.AccountID, cl.Primary)
	if err != nil {
		return err
	}
	me, err := s.d.App.Me(c.Request().Context(), cl, ids)
	if err != nil {
		return err
	}
	return respond(c, 200, Me{Account: accountOfResult(me.Account), OrganizationID: me.OrganizationID,
		OrganizationName: me.OrganizationName, Permissions: me.Permissions, Workspaces: nonNil(me.Workspaces)})
}

func (s *Server) getAccountWorkspaces(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	cl := caller(c)
	if err := cl.ReadsAccount(id); err != nil {
		return err
	}
	if err := s.awaitPosition(c); err != nil {
		return err
	}
	if _, err := s.d.Views.Account(c.Request().Context(), cl.OrganizationID, id); err != nil {
		return err
	}
	rows, err := s.d.Views.DirectMemberOf(c.Request().Context(), cl.OrganizationID, id)
	if err != nil {
		return err
	}
	ids := make([]string, len(rows))
	for i, m := range rows {
		ids[i] = m.WorkspaceID
	}
	if !cl.Primary { // a sub-account sees none of the workspaces it is not on
		if ids, err = s.d.App.MemberWorkspaces(c.Request().Context(), cl, ids); err != nil {
			return err
		}
	}
	return respond(c, 200, AccountWorkspaces{AccountID: id, WorkspaceIDs: nonNil(ids)})
}

// authorizedWorkspaces are the workspaces the caller is authorized on (every one
// of its organization for the primary).
func (s *Server) authorizedWorkspaces(c echo.Context) ([]string, error) {
	cl := caller(c)
	ids, err := s.d.Views.MemberOf(c.Request().Context(), cl.OrganizationID, cl.AccountID, cl.Primary)
	if err != nil {
		return nil, err
	}
	return s.d.App.AuthorizedWorkspaces(c.Request().Context(), cl, ids)
}

// putAccountWorkspaces reads the account's current direct memberships from the
// views once they include the whole log, then decides on each workspace against
// the log itself.
func (s *Server) putAccountWorkspaces(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	return write(s, c, func(req AccountWorkspacesRequest) (reply, error) {
		if req.WorkspaceIDs == nil {
			return reply{}, invalidField("workspace_ids", "required", "give the whole new set (an empty list removes every direct membership)")
		}
		cl := caller(c)
		memberships := func(ctx context.Context, at uint64) (map[string]uint64, error) {
			err := s.bounded(c, func(ctx context.Context) error {
				if at == 0 {
					return s.d.Views.CaughtUp(ctx)
				}
				return s.d.Views.WaitFor(ctx, at)
			})
			if err != nil {
				return nil, err
			}
			rows, err := s.d.Views.DirectMemberOf(ctx, cl.OrganizationID, id)
			out := make(map[string]uint64, len(rows))
			for _, m := range rows {
				out[m.WorkspaceID] = m.Position
			}
			return out, err
		}
		r, err := s.d.App.SetAccountWorkspaces(c.Request().Context(), commands.SetAccountWorkspaces{
			Caller: cl, AccountID: id, WorkspaceIDs: req.WorkspaceIDs, Memberships: memberships})
		return reply{status: http.StatusOK, body: AccountWorkspaces{AccountID: id, WorkspaceIDs: r.WorkspaceIDs}, version: r.Version, revoking: true}, err
	})
}
