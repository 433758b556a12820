package httpapi

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// Decision replay: what POST /v1/verify would have decided at a past instant, from
// the log as it stood then, with the events that set the state it rests on.

// AuditEvidence is the event that set a piece of state a decision rests on.
type AuditEvidence struct {
	// What is the state: api_key (business type, allowlist, QPS limit), access_key,
	// account, membership or roles.
	What     string    `json:"what" enum:"api_key,access_key,account,membership,roles"`
	EventID  string    `json:"event_id"`
	Action   string    `json:"action"`
	Time     time.Time `json:"time"`
	Actor    AuditRef  `json:"actor"`
	Position uint64    `json:"position"`
}

// ReplayedDecision is a verify decision replayed at an instant.
type ReplayedDecision struct {
	At      time.Time `json:"at"`
	Allowed bool      `json:"allowed"`
	Code    string    `json:"code"`
	// Kind is api_key or access_key; empty for an unknown credential.
	Kind        string `json:"kind,omitempty"`
	KeyID       string `json:"key_id,omitempty"`
	AccessKeyID string `json:"access_key_id,omitempty"`
	AccountID   string `json:"account_id,omitempty"`
	// The state in force: an API key's type, allowlist and QPS limit (null:
	// unlimited; a rate limit depends on that second's traffic and is not
	// replayed); an access key's, its account's and its membership.
	BusinessType    string          `json:"business_type,omitempty"`
	Allowlist       []string        `json:"allowlist,omitempty"`
	QPSLimit        *int            `json:"qps_limit,omitempty"`
	AccessKeyStatus string          `json:"access_key_status,omitempty"`
	AccountStatus   string          `json:"account_status,omitempty"`
	Primary         bool            `json:"primary,omitempty"`
	Member          *bool           `json:"member,omitempty"`
	Permissions     []string        `json:"permissions,omitempty"`
	Evidence        []AuditEvidence `json:"evidence"`
}

func (s *Server) auditDecisionRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/audit/decision", id: "replayDecision", auth: true, status: 200, response: ReplayedDecision{},
			query: []param{{name: "credential_id", description: "an API key id or an access key id"},
				{name: "workspace_id", description: "the workspace the call targeted"},
				{name: "product", description: "the product called", enum: []string{"maas", "search"}},
				{name: "source_ip", description: "the caller's address"},
				{name: "at", description: "the instant, RFC 3339, not in the future"}},
			summary: "What POST /v1/verify would have decided at an instant, and the events that set the state it rests on (audit:read)",
			handler: s.replayDecision},
	}
}

func (s *Server) replayDecision(c echo.Context) error {
	cl, err := auditReader(c)
	if err != nil {
		return err
	}
	var verr domain.ValidationError
	q := commands.ReplayDecision{Caller: cl, CredentialID: c.QueryParam("credential_id"), WorkspaceID: c.QueryParam("workspace_id")}
	if q.CredentialID == "" || len(q.CredentialID) > 128 || !domain.VisibleASCII(q.CredentialID) {
		verr.Add("credential_id", "required", "an API key id or an access key id")
	}
	if !domain.IsWorkspaceID(q.WorkspaceID) {
		verr.Add("workspace_id", "invalid_id", "the id of the workspace the call targeted")
	}
	if q.Product, err = domain.ParseBusinessType(c.QueryParam("product")); err != nil {
		verr.Add("product", "invalid_product", `must be "maas" or "search"`)
	}
	q.SourceIP, err = domain.ParseSourceIP(c.QueryParam("source_ip"))
	verr.Merge("", err)
	if q.At, err = time.Parse(time.RFC3339Nano, c.QueryParam("at")); err != nil {
		verr.Add("at", "invalid_time", "an RFC 3339 time such as 2026-12-01T00:00:00Z")
	} else if q.At.After(time.Now()) {
		verr.Add("at", "in_the_future", "an instant in the past")
	}
	if err := verr.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.bounded(c, s.d.Audit.CaughtUp); err != nil {
		return err
	}
	if domain.IsAPIKeyID(q.CredentialID) {
		if q.KeyWorkspaceID, err = s.d.Audit.KeyWorkspace(ctx, cl.OrganizationID, q.CredentialID); err != nil {
			return err
		}
	}
	d, err := s.d.App.ReplayDecision(ctx, q)
	if err != nil {
		return err
	}
	out := ReplayedDecision{At: q.At.UTC(), Allowed: d.Allowed, Code: string(d.Code), Kind: d.Kind, KeyID: d.KeyID, AccessKeyID: d.AccessKeyID,
		AccountID: d.AccountID, BusinessType: d.BusinessType, Allowlist: d.Allowlist, QPSLimit: d.QPSLimit,
		AccessKeyStatus: d.AccessKeyStatus, AccountStatus: d.AccountStatus, Primary: d.Primary, Permissions: d.Permissions, Evidence: []AuditEvidence{}}
	type ask struct {
		what string
		f    projections.EvidenceFilter
	}
	var asks []ask
	add := func(what string, f projections.EvidenceFilter) { asks = append(asks, ask{what, f}) }
	switch d.Kind {
	case "api_key":
		add("api_key", projections.EvidenceFilter{TargetID: d.KeyID,
			Types: []string{domain.TypeAPIKeyCreated, domain.TypeAPIKeyUpdated, domain.TypeAPIKeyDeleted}})
	case "access_key":
		member := d.Member
		out.Member = &member
		add("access_key", projections.EvidenceFilter{TargetID: d.AccessKeyID,
			Types: []string{domain.TypeAccessKeyCreated, domain.TypeAccessKeyRotated, domain.TypeAccessKeyDisabled, domain.TypeAccessKeyEnabled,
				domain.TypeAccessKeyDeleted}})
		account := projections.EvidenceFilter{TargetID: d.AccountID, Types: []string{domain.TypeAccountCreated, domain.TypeAccountDisabled, domain.TypeAccountEnabled}}
		if d.Primary { // created with its organization, whose id that event targets
			account = projections.EvidenceFilter{TargetID: cl.OrganizationID, Types: []string{domain.TypeOrganizationCreated}}
		}
		add("account", account)
		add("membership", projections.EvidenceFilter{TargetID: d.AccountID, WorkspaceID: q.WorkspaceID,
			Types: []string{domain.TypeMemberAuthorized, domain.TypeMemberRevoked}})
		for _, p := range d.RoleEvidence {
			add("roles", projections.EvidenceFilter{Position: p, Types: []string{domain.TypeRoleUserIncluded, domain.TypeRoleUserExcluded,
				domain.TypeRoleWorkspaceAdded, domain.TypeRoleWorkspaceRemoved, domain.TypeRoleDeleted}})
		}
	}
	if len(d.RoleEvidence) > 0 { // the views hold every event the replay cites
		if err := s.bounded(c, func(ctx context.Context) error { return s.d.Audit.WaitFor(ctx, slices.Max(d.RoleEvidence)) }); err != nil {
			return err
		}
	}
	for _, a := range asks {
		row, ok, err := s.d.Audit.LastEntry(ctx, cl.OrganizationID, a.f, q.At)
		if err != nil {
			return err
		}
		if ok {
			out.Evidence = append(out.Evidence, AuditEvidence{What: a.what, EventID: row.EventID, Action: row.Action, Time: row.At,
				Actor: AuditRef{ID: row.ActorID, Name: row.ActorName}, Position: row.Position})
		}
	}
	return respond(c, http.StatusOK, out)
}
