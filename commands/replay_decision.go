package commands

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// ReplayDecision asks what POST /v1/verify would have decided at a past instant,
// from the log as it stood then.
type ReplayDecision struct {
	Caller Caller
	// CredentialID is an API key id or an access key id. KeyWorkspaceID is the
	// workspace an API key belongs to, as the caller found it ("" when it knows
	// none: the key is then unknown).
	CredentialID, KeyWorkspaceID string
	// WorkspaceID, Product and SourceIP describe the call.
	WorkspaceID string
	Product     domain.BusinessType
	SourceIP    netip.Addr
	At          time.Time
}

// ReplayedDecision is the decision and the state it rests on.
type ReplayedDecision struct {
	Allowed bool
	Code    domain.CallCode
	// Kind is "api_key" or "access_key" ("" when the credential was unknown).
	Kind        string
	KeyID       string
	AccessKeyID string
	AccountID   string
	// An API key's business type, allowlist and QPS limit then.
	BusinessType string
	Allowlist    []string
	QPSLimit     *int
	// An access key's, its account's and the account's membership state then.
	AccessKeyStatus, AccountStatus string
	// Member: authorized on the workspace then, directly or through a role.
	Primary, Member bool
	Permissions     []string
	// RoleEvidence are the log positions of the events the account's
	// authorization on the workspace through roles rested on then (roleEvidence).
	RoleEvidence []uint64
}

// ReplayDecision decides as the data plane would have at q.At. A rate limit is not
// replayed: it depends on the traffic of that second; the QPS limit in force is
// answered instead.
func (a *App) ReplayDecision(ctx context.Context, q ReplayDecision) (ReplayedDecision, error) {
	if q.CredentialID != "" && domain.IsAPIKeyID(q.CredentialID) {
		return a.replayKey(ctx, q)
	}
	return a.replayAccessKey(ctx, q)
}

func (a *App) replayKey(ctx context.Context, q ReplayDecision) (ReplayedDecision, error) {
	out := ReplayedDecision{Code: domain.CallNotFound}
	if q.KeyWorkspaceID == "" {
		return out, nil
	}
	w, ok, err := a.workspaces.at(ctx, q.KeyWorkspaceID, q.At)
	if err != nil {
		return out, err
	}
	if !ok || w.OrganizationID() != q.Caller.OrganizationID {
		return out, nil
	}
	k, ok := w.Key(q.CredentialID)
	if !ok {
		return out, nil
	}
	out.Kind, out.KeyID, out.BusinessType, out.Allowlist, out.QPSLimit = "api_key", k.ID, string(k.BusinessType), nonNilStrings(k.Allowlist), qpsPtr(k.QPSLimit)
	allow, err := domain.ParseAllowlist(k.Allowlist)
	if err != nil {
		return out, err
	}
	out.Code = domain.KeyCallCode(k.Deleted, q.KeyWorkspaceID, k.BusinessType, allow, q.WorkspaceID, q.Product, q.SourceIP)
	out.Allowed = out.Code == domain.CallValid
	return out, nil
}

func (a *App) replayAccessKey(ctx context.Context, q ReplayDecision) (ReplayedDecision, error) {
	out := ReplayedDecision{Code: domain.CallNotFound}
	deleted := map[string]string{} // access key id → its account, once deleted
	var roleEvents []domain.Recorded
	o, ok, err := a.orgs.at(ctx, q.Caller.OrganizationID, q.At, func(r domain.Recorded) {
		switch e := r.Event.(type) {
		case domain.AccessKeyDeleted:
			deleted[e.AccessKeyID] = e.AccountID
		case domain.AccessKeyRotated: // deleted at once, or when its grace ends
			deleted[e.PreviousAccessKeyID] = e.AccountID
		case domain.RoleCreated, domain.RoleUserIncluded, domain.RoleUserExcluded, domain.RoleWorkspaceAdded, domain.RoleWorkspaceRemoved,
			domain.RoleDeleted:
			roleEvents = append(roleEvents, r)
		}
	})
	if err != nil || !ok {
		return out, err
	}
	acc, found := o.AccountByAccessKeyID(q.CredentialID)
	if !found {
		if account, ok := deleted[q.CredentialID]; ok {
			out.Kind, out.AccessKeyID, out.AccountID, out.Code, out.AccessKeyStatus = "access_key", q.CredentialID, account, domain.CallDeleted, "deleted"
		}
		return out, nil
	}
	out.Kind, out.AccessKeyID, out.AccountID, out.Primary = "access_key", q.CredentialID, acc.ID, acc.Primary
	out.AccessKeyStatus, out.AccountStatus = status(acc.AccessKeyDisabled), status(acc.Disabled)
	if q.CredentialID == acc.PreviousAccessKeyID && !acc.PreviousActiveAt(q.At) { // its grace had ended
		out.Code, out.AccessKeyStatus = domain.CallDeleted, "deleted"
		return out, nil
	}
	for _, p := range o.Permissions(acc.ID) {
		out.Permissions = append(out.Permissions, p.String())
	}
	slices.Sort(out.Permissions)
	w, wok, err := a.workspaces.at(ctx, q.WorkspaceID, q.At)
	if err != nil {
		return out, err
	}
	inOrg := wok && w.OrganizationID() == q.Caller.OrganizationID
	out.Member = inOrg && (w.IsMember(acc.ID) || len(o.WorkspaceGrants(acc.ID)[q.WorkspaceID]) > 0)
	out.RoleEvidence = roleEvidence(roleEvents, acc.ID, q.WorkspaceID)
	out.Code = domain.AccessKeyCallCode(false, acc.AccessKeyDisabled || acc.Disabled, inOrg, acc.Primary, out.Member)
	out.Allowed = out.Code == domain.CallValid
	return out, nil
}

// roleEvidence names, by log position, the events an account's authorization on a
// workspace through roles rests on after events (the role events of its
// organization, in log order): for each role that grants it, the account's
// inclusion in the role and the workspace's addition to it; when none grants it,
// the event that last ended such a grant (nothing when none ever did).
func roleEvidence(events []domain.Recorded, accountID, workspaceID string) []uint64 {
	roles := map[string]*roleGrant{} // the roles that exist, as the organization applies them
	var ended uint64
	end := func(g *roleGrant, position uint64) {
		if g.grants() {
			ended = position
		}
	}
	for _, r := range events {
		switch e := r.Event.(type) {
		case domain.RoleCreated:
			roles[e.RoleID] = &roleGrant{}
		case domain.RoleUserIncluded:
			if g := roles[e.RoleID]; g != nil && e.AccountID == accountID {
				g.user = r.Position
			}
		case domain.RoleWorkspaceAdded:
			if g := roles[e.RoleID]; g != nil && e.WorkspaceID == workspaceID {
				g.workspace = r.Position
			}
		case domain.RoleUserExcluded:
			if g := roles[e.RoleID]; g != nil && e.AccountID == accountID {
				end(g, r.Position)
				g.user = 0
			}
		case domain.RoleWorkspaceRemoved:
			if g := roles[e.RoleID]; g != nil && e.WorkspaceID == workspaceID {
				end(g, r.Position)
				g.workspace = 0
			}
		case domain.RoleDeleted:
			if g := roles[e.RoleID]; g != nil {
				end(g, r.Position)
				delete(roles, e.RoleID)
			}
		}
	}
	var out []uint64
	for _, g := range roles {
		if g.grants() {
			out = append(out, g.user, g.workspace)
		}
	}
	if len(out) == 0 && ended != 0 {
		return []uint64{ended}
	}
	slices.Sort(out)
	return out
}

// roleGrant is, for one role, the events that put the account in it and the
// workspace on it (0: not there).
type roleGrant struct{ user, workspace uint64 }

func (g *roleGrant) grants() bool { return g.user != 0 && g.workspace != 0 }

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
