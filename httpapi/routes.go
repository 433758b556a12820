package httpapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// route is one entry of the table that both registers handlers and describes them in
// the OpenAPI document, so the two cannot drift apart.
type route struct {
	method, path, id, summary string
	auth                      bool // management: an access key
	gateway                   bool // data plane: the gateway token
	request                   any  // body type, nil when none
	status                    int
	response                  any // body type, nil for no content
	query                     []param
	headers                   []param
	handler                   echo.HandlerFunc
}

// param is a query parameter or a request header of a route.
type param struct {
	name, description string
	integer           bool     // an integer, not a string
	enum              []string // a closed set of values
	list              bool     // comma-separated values of the set
}

var (
	pageParams = []param{{name: "cursor", description: "opaque cursor from next_cursor"},
		{name: "limit", description: "page size, 1 to 500 (default 50)", integer: true}}
	readHeader = []param{{name: HeaderPosition, description: "wait until the views include this log position (read-your-writes)"}}
	idemHeader = []param{{name: HeaderIdempotency, description: "retry-safe key: the same key and body from the same account give the same response"}}
	matchHdr   = []param{{name: "If-Match", description: "the ETag of the version this change is based on; 412 otherwise"}}
	// revokeHdr are the headers of a write that narrows what a credential may do.
	revokeHdr = append(matchHdr, param{name: HeaderConsistency,
		description: `"all-instances": answer once every live instance has applied the write (bounded; the answer's headers say how many did)`})
)

func (s *Server) routeTable() []route {
	return []route{
		{method: "GET", path: "/healthz", id: "healthz", summary: "Liveness", status: 200, response: Health{}, handler: s.healthz},
		{method: "GET", path: "/readyz", id: "readyz", summary: "Readiness: NATS, PostgreSQL, projection lag", status: 200, response: Health{}, handler: s.readyz},
		{method: "GET", path: "/metrics", id: "metrics", summary: "Prometheus metrics (text exposition format)", status: 200, handler: s.metrics.handler()},
		{method: "GET", path: "/openapi.json", id: "openapi", summary: "This document", status: 200, response: map[string]any{}, handler: s.openapi},

		{method: "POST", path: "/v1/workspaces", id: "createWorkspace", summary: "Create a workspace", auth: true,
			request: CreateWorkspaceRequest{}, status: 201, response: Workspace{}, headers: idemHeader, handler: s.createWorkspace},
		{method: "GET", path: "/v1/workspaces", id: "listWorkspaces", summary: "List workspaces", auth: true,
			status: 200, response: WorkspaceList{}, query: pageParams, headers: readHeader, handler: s.listWorkspaces},
		{method: "GET", path: "/v1/workspaces/:ws", id: "getWorkspace", summary: "Read a workspace", auth: true,
			status: 200, response: Workspace{}, headers: readHeader, handler: s.getWorkspace},
		{method: "PATCH", path: "/v1/workspaces/:ws", id: "updateWorkspace", summary: "Rename a workspace or change its description", auth: true,
			request: UpdateWorkspaceRequest{}, status: 200, response: Workspace{}, headers: matchHdr, handler: s.updateWorkspace},

		{method: "POST", path: "/v1/accounts", id: "createAccount", summary: "Create a sub-account", auth: true,
			request: CreateAccountRequest{}, status: 201, response: Account{}, headers: idemHeader, handler: s.createAccount},
		{method: "GET", path: "/v1/accounts", id: "listAccounts", summary: "List the organization's accounts (only the caller's own without account:read)", auth: true,
			status: 200, response: AccountList{}, query: pageParams, headers: readHeader, handler: s.listAccounts},

		{method: "GET", path: "/v1/accounts/:id", id: "getAccount", summary: "Read an account, its access key (no secret) and effective permissions", auth: true,
			status: 200, response: Account{}, headers: readHeader, handler: s.getAccount},
		{method: "PATCH", path: "/v1/accounts/:id", id: "updateAccount", summary: "Enable or disable a sub-account", auth: true,
			request: StatusRequest{}, status: 200, response: Account{}, headers: revokeHdr, handler: s.updateAccount},
		{method: "POST", path: "/v1/accounts/:id/access-key", id: "createAccessKey", summary: "Create the account's one access key (secret in this response only)", auth: true,
			status: 201, response: CreatedAccessKey{}, handler: s.createAccessKey},
		{method: "PATCH", path: "/v1/accounts/:id/access-key", id: "updateAccessKey", summary: "Enable or disable the account's access key", auth: true,
			request: StatusRequest{}, status: 200, response: AccessKey{}, headers: revokeHdr, handler: s.updateAccessKey},
		{method: "DELETE", path: "/v1/accounts/:id/access-key", id: "deleteAccessKey", summary: "Delete the account's access key", auth: true,
			headers: revokeHdr, status: 204, handler: s.deleteAccessKey},
		{method: "GET", path: "/v1/me", id: "me", summary: "The caller, its organization, effective permissions and workspaces", auth: true,
			status: 200, response: Me{}, headers: readHeader, handler: s.me},
		{method: "POST", path: "/v1/roles", id: "createRole", summary: "Create a role", auth: true,
			request: RoleRequest{}, status: 201, response: Role{}, headers: idemHeader, handler: s.createRole},
		{method: "GET", path: "/v1/roles", id: "listRoles", summary: "List roles", auth: true,
			status: 200, response: RoleList{}, headers: readHeader, handler: s.listRoles},
		{method: "GET", path: "/v1/roles/:id", id: "getRole", summary: "Read a role", auth: true,
			status: 200, response: Role{}, headers: readHeader, handler: s.getRole},
		{method: "PATCH", path: "/v1/roles/:id", id: "updateRole", summary: "Rename a role or replace its permissions or users", auth: true,
			request: RoleRequest{}, status: 200, response: Role{}, headers: revokeHdr, handler: s.updateRole},
		{method: "DELETE", path: "/v1/roles/:id", id: "deleteRole", summary: "Delete a role", auth: true,
			status: 204, headers: revokeHdr, handler: s.deleteRole},

		{method: "POST", path: "/v1/verify", id: "verify", summary: "Data plane: may this credential make this call?", gateway: true,
			request: VerifyRequest{}, status: 200, response: VerifyResponse{}, handler: s.verify},
		{method: "GET", path: "/v1/cluster", id: "cluster", summary: "Operators: live instances and the log position each has applied", gateway: true,
			status: 200, response: ClusterResponse{}, handler: s.cluster},
		{method: "GET", path: "/v1/cluster/applied", id: "clusterApplied", summary: "Has every live instance applied a log position, and when did the last one", auth: true,
			status: 200, response: AppliedResponse{}, query: []param{{name: "position", description: "a position returned by a write (X-Keyledger-Position)", integer: true}}, handler: s.clusterApplied},

		{method: "GET", path: "/v1/workspaces/:ws/members", id: "listMembers", summary: "List the accounts authorized on a workspace", auth: true,
			status: 200, response: MemberList{}, headers: readHeader, handler: s.listMembers},
		{method: "PUT", path: "/v1/workspaces/:ws/members", id: "putMembers", summary: "Replace the member set (Save)", auth: true,
			request: PutMembersRequest{}, status: 200, response: MemberList{}, headers: revokeHdr, handler: s.putMembers},

		{method: "POST", path: "/v1/workspaces/:ws/api-keys", id: "createAPIKey", summary: "Create a MaaS or Search key", auth: true,
			request: CreateAPIKeyRequest{}, status: 201, response: CreatedAPIKey{}, headers: idemHeader, handler: s.createAPIKey},
		{method: "POST", path: "/v1/workspaces/:ws/api-keys/batch", id: "createSearchKeyBatch", summary: "Create Search keys in one atomic batch", auth: true,
			request: CreateSearchBatchRequest{}, status: 201, response: CreatedAPIKeys{}, headers: idemHeader, handler: s.createSearchBatch},
		{method: "GET", path: "/v1/workspaces/:ws/api-keys", id: "listAPIKeys", summary: "List keys, masked", auth: true,
			status: 200, response: APIKeyList{}, headers: readHeader, handler: s.listAPIKeys,
			query: append([]param{{name: "business_type", description: "maas or search", enum: []string{"maas", "search"}},
				{name: "fields", description: "comma-separated fields to return (id always)", enum: slices.Sorted(maps.Keys(keyFields)), list: true}}, pageParams...)},
		{method: "GET", path: "/v1/workspaces/:ws/api-keys/:key", id: "getAPIKey", summary: "Read a key, masked", auth: true,
			status: 200, response: APIKey{}, headers: readHeader, handler: s.getAPIKey},
		{method: "PATCH", path: "/v1/workspaces/:ws/api-keys/:key", id: "updateAPIKey", summary: "Edit a key's allowlist and note (Search: name and qps_limit)", auth: true,
			request: UpdateAPIKeyRequest{}, status: 200, response: APIKey{}, headers: revokeHdr, handler: s.updateAPIKey},
		{method: "DELETE", path: "/v1/workspaces/:ws/api-keys/:key", id: "deleteAPIKey", summary: "Delete a key; its plaintext is destroyed", auth: true,
			status: 204, headers: revokeHdr, handler: s.deleteAPIKey},
		{method: "POST", path: "/v1/workspaces/:ws/api-keys/:key/reveal", id: "revealAPIKey", summary: "Reveal a key's plaintext (audited)", auth: true,
			status: 200, response: RevealedAPIKey{}, handler: s.revealAPIKey},
	}
}

func (s *Server) healthz(c echo.Context) error {
	return respond(c, 200, Health{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	h := Health{Status: "ok", Checks: map[string]string{}}
	for name, check := range s.d.Ready {
		if err := check(ctx); err != nil {
			h.Status, h.Checks[name] = "unavailable", err.Error()
		} else {
			h.Checks[name] = "ok"
		}
	}
	status := 200
	if h.Status != "ok" {
		status = 503
	}
	return respond(c, status, h)
}

func (s *Server) openapi(c echo.Context) error {
	return respond(c, 200, s.OpenAPI())
}

// pathID checks a path id's shape, so garbage is a 404 without a lookup.
func pathID(c echo.Context, name string, valid func(string) bool, notFound error) (string, error) {
	id := c.Param(name)
	if !valid(id) {
		return "", notFound
	}
	return id, nil
}

func page(c echo.Context) (projections.Page, error) {
	p := projections.Page{Cursor: c.QueryParam("cursor"), Limit: 50}
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return p, invalidField("limit", "out_of_range", "must be an integer between 1 and 500")
		}
		p.Limit = n
	}
	if !projections.ValidCursor(p.Cursor) {
		return p, projections.ErrBadCursor
	}
	return p, nil
}

func (s *Server) createWorkspace(c echo.Context) error {
	var req CreateWorkspaceRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	r, err := s.d.App.CreateWorkspace(c.Request().Context(), commands.CreateWorkspace{
		Caller: caller(c), Idempotency: idem, Name: req.Name, Description: req.Description})
	if err != nil {
		return err
	}
	written(c, r.Version, r.ETag)
	replayed(c, r.Replayed)
	c.Response().Header().Set("Location", "/v1/workspaces/"+r.WorkspaceID)
	return respond(c, http.StatusCreated, workspaceOfResult(r))
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
	// A sub-account sees the workspaces it is a member of and may read, each
	// confirmed against the log.
	items, next, err := s.d.Views.WorkspacesOfMember(ctx, cl.OrganizationID, cl.AccountID, p)
	if err != nil {
		return err
	}
	ids := make([]string, len(items))
	for i, w := range items {
		ids[i] = w.ID
	}
	readable, err := s.d.App.ReadableWorkspaces(ctx, cl, ids)
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
	ws, err := s.readableWorkspace(c, commands.PermWorkspaceRead)
	if err != nil {
		return err
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
	var req UpdateWorkspaceRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	r, err := s.d.App.UpdateWorkspace(c.Request().Context(), commands.UpdateWorkspace{
		Caller: caller(c), WorkspaceID: ws, Name: req.Name, Description: req.Description, IfMatch: ifMatch(c)})
	if err != nil {
		return err
	}
	written(c, r.Version, r.ETag)
	return respond(c, 200, workspaceOfResult(r))
}

func (s *Server) listMembers(c echo.Context) error {
	ws, err := s.readableWorkspace(c, commands.PermWorkspaceRead)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	w, err := s.d.Views.Workspace(ctx, caller(c).OrganizationID, ws)
	if err != nil {
		return err
	}
	items, err := s.d.Views.Members(ctx, caller(c).OrganizationID, ws)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(w.ID, w.MembersVersion))
	return respond(c, 200, membersOfRows(items))
}

func (s *Server) putMembers(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	var req PutMembersRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.AccountIDs == nil {
		return invalidField("account_ids", "required", "give the whole new member set (an empty list removes everyone)")
	}
	r, err := s.d.App.SetMembers(c.Request().Context(), commands.SetMembers{Caller: caller(c), WorkspaceID: ws, AccountIDs: req.AccountIDs, IfMatch: ifMatch(c)})
	if err != nil {
		return err
	}
	written(c, r.Version, r.ETag)
	s.revoked(c, r.Version)
	return respond(c, 200, membersOfResult(r))
}

func (s *Server) createAPIKey(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	var req CreateAPIKeyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	r, err := s.d.App.CreateAPIKey(c.Request().Context(), commands.CreateAPIKey{
		Caller: caller(c), Idempotency: idem, WorkspaceID: ws, BusinessType: req.BusinessType,
		Name: req.Name, Allowlist: req.Allowlist, Note: req.Note, QPSLimit: req.QPSLimit})
	if err != nil {
		return err
	}
	k := r.Keys[0]
	written(c, r.Version, k.ETag)
	replayed(c, r.Replayed)
	c.Response().Header().Set("Location", "/v1/workspaces/"+ws+"/api-keys/"+k.KeyID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return respond(c, http.StatusCreated, CreatedAPIKey{APIKey: apiKeyOfResult(k), Secret: k.Secret})
}

func (s *Server) createSearchBatch(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	var req CreateSearchBatchRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	cmd := commands.CreateSearchKeyBatch{Caller: caller(c), Idempotency: idem, WorkspaceID: ws, Count: req.Count,
		NamePrefix: req.Naming.Prefix, Names: req.Naming.Names, Allowlist: req.Allowlist}
	if rl := req.RateLimit; rl != nil {
		cmd.RateLimit = &commands.RateLimit{Mode: rl.Mode, QPS: rl.QPS, QPSList: rl.QPSList}
	}
	r, err := s.d.App.CreateSearchKeyBatch(c.Request().Context(), cmd)
	if err != nil {
		return err
	}
	out := CreatedAPIKeys{BatchID: r.BatchID, Items: make([]CreatedAPIKey, len(r.Keys))}
	for i, k := range r.Keys {
		out.Items[i] = CreatedAPIKey{APIKey: apiKeyOfResult(k), Secret: k.Secret}
	}
	written(c, r.Version, "")
	replayed(c, r.Replayed)
	c.Response().Header().Set("Location", "/v1/workspaces/"+ws+"/api-keys?batch_id="+r.BatchID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return respond(c, http.StatusCreated, out)
}

// keyFields are the columns a list may select with `fields`.
var keyFields = map[string]bool{"id": true, "workspace_id": true, "business_type": true, "name": true, "allowlist": true,
	"note": true, "qps_limit": true, "masked_secret": true, "batch_id": true, "created_at": true, "updated_at": true,
	"last_revealed_at": true}

func (s *Server) listAPIKeys(c echo.Context) error {
	ws, err := s.readableWorkspace(c, commands.PermAPIKeyRead)
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	bt := c.QueryParam("business_type")
	if bt != "" {
		if _, err := domain.ParseBusinessType(bt); err != nil {
			return err
		}
	}
	var fields []string
	if f := c.QueryParam("fields"); f != "" {
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if !keyFields[name] {
				return invalidField("fields", "unknown_field", "unknown field "+strconv.Quote(name))
			}
			fields = append(fields, name)
		}
	}
	rows, next, err := s.d.Views.APIKeys(c.Request().Context(), caller(c).OrganizationID, ws, bt, p)
	if err != nil {
		return err
	}
	out := APIKeyList{Items: make([]map[string]any, len(rows)), NextCursor: next}
	for i, r := range rows {
		m, err := selectFields(apiKeyOfRow(r), fields)
		if err != nil {
			return err
		}
		out.Items[i] = m
	}
	return respond(c, 200, out)
}

// selectFields keeps the requested fields of a row (all when none), and always id.
func selectFields(v any, fields []string) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return all, nil
	}
	out := map[string]any{"id": all["id"]}
	for _, f := range fields {
		out[f] = all[f]
	}
	return out, nil
}

// readableWorkspace checks the path's workspace id, waits for a requested position,
// and, for a sub-account, authorizes p on the workspace as loaded from the log (for
// the primary account the views' organization filter is the check).
func (s *Server) readableWorkspace(c echo.Context, p domain.Permission) (string, error) {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return "", err
	}
	if cl := caller(c); !cl.Primary {
		if err := s.d.App.AuthorizeWorkspace(c.Request().Context(), cl, ws, p); err != nil {
			return "", err
		}
	}
	return ws, s.awaitPosition(c)
}

func (s *Server) keyPath(c echo.Context) (string, string, error) {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return "", "", err
	}
	key, err := pathID(c, "key", domain.IsAPIKeyID, domain.ErrAPIKeyNotFound)
	return ws, key, err
}

func (s *Server) getAPIKey(c echo.Context) error {
	ws, err := s.readableWorkspace(c, commands.PermAPIKeyRead)
	if err != nil {
		return err
	}
	key, err := pathID(c, "key", domain.IsAPIKeyID, domain.ErrAPIKeyNotFound)
	if err != nil {
		return err
	}
	k, err := s.d.Views.APIKey(c.Request().Context(), caller(c).OrganizationID, ws, key)
	if err != nil {
		return err
	}
	c.Response().Header().Set("ETag", s.d.App.ETag(k.ID, k.Version))
	return respond(c, 200, apiKeyOfRow(k))
}

func (s *Server) updateAPIKey(c echo.Context) error {
	ws, key, err := s.keyPath(c)
	if err != nil {
		return err
	}
	var req UpdateAPIKeyRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	cmd := commands.UpdateAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key, Name: req.Name, Note: req.Note, IfMatch: ifMatch(c)}
	if req.Allowlist != nil {
		l := []string(*req.Allowlist)
		cmd.Allowlist = &l
	}
	if req.QPSLimit.Set {
		cmd.QPSLimit, cmd.ClearQPSLimit = req.QPSLimit.Value, req.QPSLimit.Value == nil
	}
	k, version, err := s.d.App.UpdateAPIKey(c.Request().Context(), cmd)
	if err != nil {
		return err
	}
	written(c, version, k.ETag)
	s.revoked(c, version)
	return respond(c, 200, apiKeyOfResult(k))
}

func (s *Server) deleteAPIKey(c echo.Context) error {
	ws, key, err := s.keyPath(c)
	if err != nil {
		return err
	}
	version, err := s.d.App.DeleteAPIKey(c.Request().Context(), commands.DeleteAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key, IfMatch: ifMatch(c)})
	if err != nil {
		return err
	}
	written(c, version, "")
	s.revoked(c, version)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) revealAPIKey(c echo.Context) error {
	ws, key, err := s.keyPath(c)
	if err != nil {
		return err
	}
	r, err := s.d.App.RevealAPIKey(c.Request().Context(), commands.RevealAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key})
	if err != nil {
		return err
	}
	written(c, r.Version, "")
	c.Response().Header().Set("Cache-Control", "no-store")
	return respond(c, 200, RevealedAPIKey{ID: r.KeyID, Secret: r.Secret})
}
