package commands

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/keyledger/keyledger/domain"
)

// Can refuses, naming the permission, a caller who lacks p. The caller's permissions
// were read from the organization as loaded from the log when it authenticated, at
// the start of this request: a role change applies to the very next request.
func (c Caller) Can(p domain.Permission) error { return c.can(p) }

func (c Caller) can(p domain.Permission) error {
	if c.Primary || c.Permissions[p] {
		return nil
	}
	return &domain.ForbiddenError{Missing: p}
}

// onWorkspace checks that the caller may act on the workspace with permission p:
// the workspace is of its organization (else not found), it holds p, and a
// sub-account is authorized on it.
func (c Caller) onWorkspace(w *domain.Workspace, p domain.Permission) error {
	if err := ownWorkspace(c, w); err != nil {
		return err
	}
	if err := c.can(p); err != nil {
		return err
	}
	if !c.authorizedOn(w) {
		return &domain.ForbiddenError{Missing: p, NotMember: true}
	}
	return nil
}

// mayAuthorize refuses a sub-account making itself a direct member of a workspace
// it is not one of: being authorized there through a role (or not at all) must not
// turn into a membership that outlives the role.
func (c Caller) mayAuthorize(w *domain.Workspace, accountID string) error {
	if !c.Primary && accountID == c.AccountID && !w.IsMember(accountID) {
		return &domain.ForbiddenError{Missing: permWorkspaceUpdate, SelfGrant: true}
	}
	return nil
}

// authorizedOn: the primary account is authorized everywhere; a sub-account where
// it is a direct member or where one of its roles authorizes it.
func (c Caller) authorizedOn(w *domain.Workspace) bool {
	return c.Primary || w.IsMember(c.AccountID) || len(c.Grants[w.ID()]) > 0
}

// AuthorizeWorkspace checks, against the workspace as loaded from the log (one round
// trip confirms the cache is current), that the caller may use permission p on it.
// Queries call it before reading views.
func (a *App) AuthorizeWorkspace(ctx context.Context, c Caller, workspaceID string, p domain.Permission) error {
	return a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error {
		return c.onWorkspace(w, p)
	})
}

// AuthorizeMember checks, against the workspace as loaded from the log, that the
// caller is authorized on it (directly or through a role): what seeing a workspace's
// own fields takes, no permission needed.
func (a *App) AuthorizeMember(ctx context.Context, c Caller, workspaceID string) error {
	return a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error {
		if err := ownWorkspace(c, w); err != nil {
			return err
		}
		if !c.authorizedOn(w) {
			return &domain.ForbiddenError{Missing: permWorkspaceRead, NotMember: true}
		}
		return nil
	})
}

// AuthorizedWorkspaces are the workspaces the caller is authorized on. memberOf is
// what the views list for it: for the primary, every workspace of its organization,
// taken as listed (it is authorized on each, and a workspace never leaves its
// organization); for a sub-account, its memberships, which with its roles' workspaces
// as it authenticated are each confirmed against the log.
func (a *App) AuthorizedWorkspaces(ctx context.Context, c Caller, memberOf []string) ([]string, error) {
	if c.Primary {
		return memberOf, nil
	}
	candidates := slices.AppendSeq(slices.Clone(memberOf), maps.Keys(c.Grants))
	slices.Sort(candidates)
	return a.MemberWorkspaces(ctx, c, slices.Compact(candidates))
}

// MemberWorkspaces keeps the ids of workspaces the caller is authorized on, checked
// against the log: a view may list a membership revoked a millisecond ago.
func (a *App) MemberWorkspaces(ctx context.Context, c Caller, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		err := a.AuthorizeMember(ctx, c, id)
		if err == nil {
			out = append(out, id)
			continue
		}
		var forbidden *domain.ForbiddenError
		if !errors.As(err, &forbidden) && !errors.Is(err, domain.ErrWorkspaceNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// ReadsAccount: every account reads itself; the others need account:read.
func (c Caller) ReadsAccount(id string) error {
	if id == c.AccountID {
		return nil
	}
	return c.can(PermAccountRead)
}

// onAccessKey: the primary manages every account's access key; a sub-account only
// its own, with the matching access_key permission; a secret in its grace after a
// rotation, none.
func (c Caller) onAccessKey(accountID string, action domain.Action) error {
	if c.PreviousSecret {
		return &domain.ForbiddenError{PreviousSecret: true}
	}
	if accountID == c.AccountID {
		return c.can(domain.Permission{Module: domain.ModuleAccessKey, Action: action})
	}
	return c.can(domain.PermOrganizationAdmin)
}

var (
	permWorkspaceRead   = domain.Permission{Module: domain.ModuleWorkspace, Action: domain.ActionRead}
	permWorkspaceCreate = domain.Permission{Module: domain.ModuleWorkspace, Action: domain.ActionCreate}
	permWorkspaceUpdate = domain.Permission{Module: domain.ModuleWorkspace, Action: domain.ActionUpdate}
	permKeyRead         = domain.Permission{Module: domain.ModuleAPIKey, Action: domain.ActionRead}
	permKeyCreate       = domain.Permission{Module: domain.ModuleAPIKey, Action: domain.ActionCreate}
	permKeyUpdate       = domain.Permission{Module: domain.ModuleAPIKey, Action: domain.ActionUpdate}
	permKeyDelete       = domain.Permission{Module: domain.ModuleAPIKey, Action: domain.ActionDelete}
)

// Permission names for the HTTP layer's read routes.
var (
	PermWorkspaceRead = permWorkspaceRead
	// PermWorkspaceUpdate manages a workspace's members.
	PermWorkspaceUpdate = permWorkspaceUpdate
	PermAPIKeyRead      = permKeyRead
	// PermAccountRead lets a sub-account see the organization's other accounts.
	PermAccountRead = domain.Permission{Module: domain.ModuleAccount, Action: domain.ActionRead}
	// PermCostRead lets a sub-account read costs.
	PermCostRead = domain.Permission{Module: domain.ModuleCost, Action: domain.ActionRead}
	// PermAuditRead lets a sub-account read the audit history and the raw events.
	PermAuditRead = domain.Permission{Module: domain.ModuleAudit, Action: domain.ActionRead}
)
