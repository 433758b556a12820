package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
	"github.com/labstack/echo/v4"
)

// Handlers of a workspace's API keys.

// apiKeyRoutes are the routes of a workspace's API keys.
func (s *Server) apiKeyRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/workspaces/:ws/api-keys", id: "createAPIKey", summary: "Create a MaaS or Search key", auth: true,
			request: CreateAPIKeyRequest{}, status: 201, response: CreatedAPIKey{}, headers: idemHeader, handler: s.createAPIKey},
		{method: "POST", path: "/v1/workspaces/:ws/api-keys/batch", id: "createSearchKeyBatch", summary: "Create Search keys in one atomic batch", auth: true,
			request: CreateSearchBatchRequest{}, status: 201, response: APIKeyBatch{}, headers: idemHeader, handler: s.createSearchBatch},
		{method: "GET", path: "/v1/workspaces/:ws/api-keys", id: "listAPIKeys", summary: "List keys, masked", auth: true,
			status: 200, response: APIKeyList{}, csv: true, headers: readHeader, handler: s.listAPIKeys,
			query: append([]param{{name: "business_type", description: "maas or search", enum: []string{"maas", "search"}},
				{name: "batch_id", description: "only the keys of one batch (the Location of a batch creation)"},
				{name: "fields", description: "comma-separated fields to return (id always)", enum: keyFieldNames, list: true}}, pageParams...)},
		{method: "GET", path: "/v1/workspaces/:ws/api-keys/:key", id: "getAPIKey", summary: "Read a key, masked", auth: true,
			status: 200, response: APIKey{}, headers: readHeader, query: asOfQuery, handler: s.getAPIKey},
		{method: "PATCH", path: "/v1/workspaces/:ws/api-keys/:key", id: "updateAPIKey", summary: "Edit a key's allowlist and note (Search: name and qps_limit)", auth: true,
			request: UpdateAPIKeyRequest{}, status: 200, response: APIKey{}, headers: revokeHdr, handler: s.updateAPIKey},
		{method: "DELETE", path: "/v1/workspaces/:ws/api-keys/:key", id: "deleteAPIKey", summary: "Delete a key; its plaintext is destroyed", auth: true,
			status: 204, headers: revokeHdr, handler: s.deleteAPIKey},
		{method: "POST", path: "/v1/workspaces/:ws/api-keys/:key/reveal", id: "revealAPIKey", summary: "Reveal a key's plaintext (audited)", auth: true,
			status: 200, response: RevealedAPIKey{}, handler: s.revealAPIKey},
	}
}

func (s *Server) createAPIKey(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	return write(s, c, func(req CreateAPIKeyRequest) (reply, error) {
		idem, err := idempotency(c, req)
		if err != nil {
			return reply{}, err
		}
		r, err := s.d.App.CreateAPIKey(c.Request().Context(), commands.CreateAPIKey{
			Caller: caller(c), Idempotency: idem, WorkspaceID: ws, BusinessType: req.BusinessType,
			Name: req.Name.Value, Allowlist: req.Allowlist, Note: req.Note, QPSLimit: req.QPSLimit.Value})
		if err != nil {
			return reply{}, err
		}
		k := r.Keys[0]
		return reply{status: http.StatusCreated, body: CreatedAPIKey{APIKey: apiKeyOfResult(k), Secret: k.Secret}, version: r.Version,
			etag: k.ETag, location: "/v1/workspaces/" + ws + "/api-keys/" + k.KeyID, replayed: r.Replayed, secret: true}, nil
	})
}

func (s *Server) createSearchBatch(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	return write(s, c, func(req CreateSearchBatchRequest) (reply, error) {
		idem, err := idempotency(c, req)
		if err != nil {
			return reply{}, err
		}
		if req.BusinessType != nil {
			if b, err := domain.ParseBusinessType(*req.BusinessType); err != nil || b != domain.BusinessSearch {
				return reply{}, invalidField("business_type", "search_only", `a batch makes Search keys: "search" or omit it`)
			}
		}
		cmd := commands.CreateSearchKeyBatch{Caller: caller(c), Idempotency: idem, WorkspaceID: ws, Count: req.Count,
			NamePrefix: req.Naming.Prefix, Names: req.Naming.Names, Allowlist: req.Allowlist}
		if rl := req.RateLimit; rl != nil {
			cmd.RateLimit = &commands.RateLimit{Mode: rl.Mode, QPS: rl.QPS}
			if rl.QPSList != nil {
				cmd.RateLimit.QPSList = make([]*int, len(rl.QPSList))
				for i, q := range rl.QPSList {
					cmd.RateLimit.QPSList[i] = q.Value
				}
			}
		}
		r, err := s.d.App.CreateSearchKeyBatch(c.Request().Context(), cmd)
		out := APIKeyBatch{BatchID: r.BatchID, Items: make([]CreatedAPIKey, len(r.Keys))}
		for i, k := range r.Keys {
			out.Items[i] = CreatedAPIKey{APIKey: apiKeyOfResult(k), Secret: k.Secret}
		}
		return reply{status: http.StatusCreated, body: out, version: r.Version, replayed: r.Replayed, secret: true,
			location: "/v1/workspaces/" + ws + "/api-keys?batch_id=" + r.BatchID}, err
	})
}

// keyFieldNames are the columns a list may select with `fields`: the key's own
// fields on the wire, in their order.
var keyFieldNames = jsonFields(reflect.TypeOf(APIKey{}))

func (s *Server) listAPIKeys(c echo.Context) error {
	ws, err := s.readableWorkspace(c, commands.PermAPIKeyRead)
	if err != nil {
		return err
	}
	p, err := page(c)
	if err != nil {
		return err
	}
	filter := projections.KeyFilter{BusinessType: c.QueryParam("business_type"), BatchID: c.QueryParam("batch_id")}
	if filter.BusinessType != "" {
		b, err := domain.ParseBusinessType(filter.BusinessType)
		if err != nil {
			return err
		}
		filter.BusinessType = string(b)
	}
	if filter.BatchID != "" && !domain.ValidID("batch_", filter.BatchID) {
		return invalidField("batch_id", "invalid_batch_id", "a batch_id returned by a batch creation")
	}
	var fields []string
	if f := c.QueryParam("fields"); f != "" {
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(keyFieldNames, name) {
				return invalidField("fields", "unknown_field", "unknown field "+strconv.Quote(name))
			}
			if !slices.Contains(fields, name) {
				fields = append(fields, name)
			}
		}
	}
	if accepts(c, "text/csv") {
		return s.exportAPIKeys(c, ws, filter, fields)
	}
	rows, next, err := s.d.Views.APIKeys(c.Request().Context(), caller(c).OrganizationID, ws, filter, p)
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
	if t, ok, err := asOf(c); ok || err != nil {
		if err != nil {
			return err
		}
		r, err := s.d.App.APIKeyAt(c.Request().Context(), caller(c), ws, key, t)
		return answerAt(c, r.ETag, apiKeyOfResult(r), err)
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
	return write(s, c, func(req UpdateAPIKeyRequest) (reply, error) {
		cmd := commands.UpdateAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key, Name: req.Name.Value, ClearName: req.Name.Set && req.Name.Value == nil,
			Note: req.Note, IfMatch: ifMatch(c)}
		if req.Allowlist != nil {
			l := []string(*req.Allowlist)
			cmd.Allowlist = &l
		}
		if req.QPSLimit.Set {
			cmd.QPSLimit, cmd.ClearQPSLimit = req.QPSLimit.Value, req.QPSLimit.Value == nil
		}
		k, version, err := s.d.App.UpdateAPIKey(c.Request().Context(), cmd)
		if err != nil {
			return reply{}, err
		}
		out := apiKeyOfResult(k)
		// The last use is no state of the log: the table a read joins tells it; the
		// write is done, so a failure to read it leaves it null, not the answer.
		if at, err := s.d.Views.KeyLastUsed(c.Request().Context(), key); err == nil {
			out.LastUsedAt = utcPtr(at)
		}
		return reply{status: http.StatusOK, body: out, version: version, etag: k.ETag, revoking: true}, nil
	})
}

func (s *Server) deleteAPIKey(c echo.Context) error {
	ws, key, err := s.keyPath(c)
	if err != nil {
		return err
	}
	return write(s, c, func(struct{}) (reply, error) {
		version, err := s.d.App.DeleteAPIKey(c.Request().Context(), commands.DeleteAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key, IfMatch: ifMatch(c)})
		return reply{status: http.StatusNoContent, version: version, revoking: true}, err
	})
}

func (s *Server) revealAPIKey(c echo.Context) error {
	ws, key, err := s.keyPath(c)
	if err != nil {
		return err
	}
	return write(s, c, func(struct{}) (reply, error) {
		r, err := s.d.App.RevealAPIKey(c.Request().Context(), commands.RevealAPIKey{Caller: caller(c), WorkspaceID: ws, KeyID: key})
		return reply{status: http.StatusOK, body: RevealedAPIKey{ID: r.KeyID, Secret: r.Secret}, version: r.Version, secret: true}, err
	})
}
