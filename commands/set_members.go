package commands

import (
	"context"
	"slices"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// SetMembers replaces the set of accounts authorized on a workspace ("Save").
type SetMembers struct {
	Caller      Caller
	WorkspaceID string
	AccountIDs  []string
	IfMatch     IfMatch
}

// MembersResult is the member set after a Save.
type MembersResult struct {
	WorkspaceID string
	Members     []Member
	// ETag is the member set's entity tag; Version the log position of the write.
	ETag    string
	Version uint64
}

// Member is an account authorized on a workspace: directly (since AuthorizedAt),
// through roles, or both.
type Member struct {
	AccountID string
	Name      string
	Primary   bool
	// AuthorizedAt is zero when the account is authorized only through roles.
	AuthorizedAt time.Time
	// Roles are the roles that authorize it there, by id.
	Roles []RoleRef
}

// RoleRef names a role.
type RoleRef struct{ ID, Name string }

// memberDirectory is what a member list needs of the organization: the accounts'
// names and the roles that authorize accounts on one workspace.
type memberDirectory struct {
	accounts map[string]domain.Account
	via      map[string][]RoleRef // account id →
}

// directoryOf reads the organization for the members of a workspace: the accounts
// listed and those its roles authorize there.
func directoryOf(o *domain.Organization, workspaceID string, accountIDs []string) memberDirectory {
	d := memberDirectory{accounts: map[string]domain.Account{}, via: map[string][]RoleRef{}}
	for account, roles := range o.RoleMembers(workspaceID) {
		for _, id := range roles {
			r, _ := o.RoleByID(id)
			d.via[account] = append(d.via[account], RoleRef{ID: id, Name: r.Name})
		}
		accountIDs = append(accountIDs, account)
	}
	for _, id := range accountIDs {
		if acc, ok := o.Account(id); ok {
			d.accounts[id] = acc
		}
	}
	return d
}

// members lists who is authorized on w, in account order.
func (d memberDirectory) members(w *domain.Workspace) []Member {
	ids := w.Members()
	for id := range d.via {
		if !w.IsMember(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]Member, len(ids))
	for i, id := range ids {
		acc := d.accounts[id]
		out[i] = Member{AccountID: id, Name: acc.Name, Primary: acc.Primary, AuthorizedAt: w.AuthorizedAt(id), Roles: d.via[id]}
	}
	return out
}

// SetMembers handles the command: only the difference with the current set becomes
// events. Accounts are checked against the organization as loaded from the log.
func (a *App) SetMembers(ctx context.Context, cmd SetMembers) (MembersResult, error) {
	out := MembersResult{WorkspaceID: cmd.WorkspaceID}
	var dir memberDirectory
	err := a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, _ uint64) error {
		dir = directoryOf(o, cmd.WorkspaceID, slices.Clone(cmd.AccountIDs))
		return nil
	})
	if err != nil {
		return out, err
	}
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permWorkspaceUpdate); err != nil {
				return nil, err
			}
			if err := a.precondition(cmd.IfMatch, MembersResource(w.ID()), w.MembersVersion()); err != nil {
				return nil, err
			}
			if slices.Contains(cmd.AccountIDs, cmd.Caller.AccountID) {
				if err := cmd.Caller.mayAuthorize(w, cmd.Caller.AccountID); err != nil {
					return nil, err
				}
			}
			return w.SetMembers(cmd.AccountIDs, func(id string) bool { _, ok := dir.accounts[id]; return ok }, a.now())
		},
		func(w *domain.Workspace) {
			out.ETag = a.ETag(MembersResource(w.ID()), w.MembersVersion())
			out.Members = dir.members(w)
		})
	out.Version = version
	return out, err
}

// MembersResource names a workspace's member set as a resource of its own, so its
// entity tag never equals the workspace's.
func MembersResource(workspaceID string) string { return workspaceID + "/members" }
