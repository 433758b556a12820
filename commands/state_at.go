package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// The state of an organization's resources at a past instant (the as_of reads),
// rebuilt from the log outside the cache. Whether the caller may read the resource
// is decided as it stands now, by the caller of these queries; they check only
// that what they answer was the caller's organization's at that instant.

func (a *App) workspaceAt(ctx context.Context, c Caller, wsID string, t time.Time) (*domain.Workspace, error) {
	w, ok, err := a.workspaces.at(ctx, wsID, t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domain.ErrWorkspaceNotFound
	}
	return w, ownWorkspace(c, w)
}

func (a *App) organizationAt(ctx context.Context, c Caller, t time.Time) (*domain.Organization, error) {
	o, ok, err := a.orgs.at(ctx, c.OrganizationID, t)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domain.ErrOrganizationNotFound
	}
	return o, nil
}

// WorkspaceAt is the workspace as it stood at t.
func (a *App) WorkspaceAt(ctx context.Context, c Caller, wsID string, t time.Time) (WorkspaceResult, error) {
	w, err := a.workspaceAt(ctx, c, wsID, t)
	if err != nil {
		return WorkspaceResult{}, err
	}
	return a.workspaceResult(w), nil
}

// APIKeyAt is the key as it stood at t (masked); a key deleted since is answered,
// one not created yet or already deleted then is domain.ErrAPIKeyNotFound.
func (a *App) APIKeyAt(ctx context.Context, c Caller, wsID, keyID string, t time.Time) (APIKeyResult, error) {
	w, err := a.workspaceAt(ctx, c, wsID, t)
	if err != nil {
		return APIKeyResult{}, err
	}
	k, ok := w.Key(keyID)
	if !ok || k.Deleted {
		return APIKeyResult{}, domain.ErrAPIKeyNotFound
	}
	keys := []APIKeyResult{a.apiKeyResult(wsID, k)}
	err = a.nameActors(ctx, c.OrganizationID, keys) // before keys[0] is read
	return keys[0], err
}

// MembersAt is the workspace's member set as it stood at t, with the accounts'
// names as they were then.
func (a *App) MembersAt(ctx context.Context, c Caller, wsID string, t time.Time) (MembersResult, error) {
	w, err := a.workspaceAt(ctx, c, wsID, t)
	if err != nil {
		return MembersResult{}, err
	}
	o, err := a.organizationAt(ctx, c, t)
	if err != nil {
		return MembersResult{}, err
	}
	return MembersResult{WorkspaceID: wsID, ETag: a.ETag(MembersResource(wsID), w.MembersVersion()),
		Members: directoryOf(o, wsID, w.Members()).members(w)}, nil
}

// AccountAt is the account as it stood at t, with its access key and effective
// permissions then.
func (a *App) AccountAt(ctx context.Context, c Caller, accountID string, t time.Time) (AccountResult, error) {
	o, err := a.organizationAt(ctx, c, t)
	if err != nil {
		return AccountResult{}, err
	}
	if !o.HasAccount(accountID) {
		return AccountResult{}, domain.ErrAccountNotFound
	}
	return a.accountResultAt(o, accountID, t), nil
}

// RoleAt is the role as it stood at t.
func (a *App) RoleAt(ctx context.Context, c Caller, roleID string, t time.Time) (RoleResult, error) {
	o, err := a.organizationAt(ctx, c, t)
	if err != nil {
		return RoleResult{}, err
	}
	r, ok := o.RoleByID(roleID)
	if !ok {
		return RoleResult{}, domain.ErrRoleNotFound
	}
	return a.roleResult(o, r), nil
}
