package credindex

import (
	"time"

	"github.com/keyledger/keyledger/domain"
)

// roleGrants keeps which accounts roles authorize on which workspaces: an account
// is authorized on a workspace when it is a direct member or when a role that
// includes it carries the workspace. Guarded by Index.mu.
type roleGrants struct {
	roles map[string]*roleEntry // role id →
	count map[[2]string]int     // (workspace, account) → roles authorizing it
}

type roleEntry struct {
	users, workspaces map[string]struct{}
}

func newRoleGrants() roleGrants {
	return roleGrants{roles: map[string]*roleEntry{}, count: map[[2]string]int{}}
}

// grants reports whether a role authorizes the account on the workspace.
func (g roleGrants) grants(workspaceID, accountID string) bool {
	return g.count[[2]string{workspaceID, accountID}] > 0
}

// apply evolves the grants by an organization event; changed learns each
// (workspace, account) whose authorization through roles turned on or off, and when.
func (g roleGrants) apply(e domain.Event, changed func(workspaceID, accountID string, on bool, at time.Time)) {
	switch e := e.(type) {
	case domain.RoleCreated:
		g.drop(e.RoleID, e.At, changed)
		g.roles[e.RoleID] = &roleEntry{users: map[string]struct{}{}, workspaces: map[string]struct{}{}}
	case domain.RoleDeleted:
		g.drop(e.RoleID, e.At, changed)
	case domain.RoleUserIncluded:
		if r := g.roles[e.RoleID]; r != nil && !has(r.users, e.AccountID) {
			r.users[e.AccountID] = struct{}{}
			for ws := range r.workspaces {
				g.add(ws, e.AccountID, 1, e.At, changed)
			}
		}
	case domain.RoleUserExcluded:
		if r := g.roles[e.RoleID]; r != nil && has(r.users, e.AccountID) {
			delete(r.users, e.AccountID)
			for ws := range r.workspaces {
				g.add(ws, e.AccountID, -1, e.At, changed)
			}
		}
	case domain.RoleWorkspaceAdded:
		if r := g.roles[e.RoleID]; r != nil && !has(r.workspaces, e.WorkspaceID) {
			r.workspaces[e.WorkspaceID] = struct{}{}
			for account := range r.users {
				g.add(e.WorkspaceID, account, 1, e.At, changed)
			}
		}
	case domain.RoleWorkspaceRemoved:
		if r := g.roles[e.RoleID]; r != nil && has(r.workspaces, e.WorkspaceID) {
			delete(r.workspaces, e.WorkspaceID)
			for account := range r.users {
				g.add(e.WorkspaceID, account, -1, e.At, changed)
			}
		}
	}
}

// drop removes a role and what it authorized.
func (g roleGrants) drop(roleID string, at time.Time, changed func(string, string, bool, time.Time)) {
	r := g.roles[roleID]
	if r == nil {
		return
	}
	delete(g.roles, roleID)
	for ws := range r.workspaces {
		for account := range r.users {
			g.add(ws, account, -1, at, changed)
		}
	}
}

func (g roleGrants) add(workspaceID, accountID string, delta int, at time.Time, changed func(string, string, bool, time.Time)) {
	k := [2]string{workspaceID, accountID}
	before := g.count[k]
	after := before + delta
	if after <= 0 {
		delete(g.count, k)
	} else {
		g.count[k] = after
	}
	if (before > 0) != (after > 0) {
		changed(workspaceID, accountID, after > 0, at)
	}
}

func has(set map[string]struct{}, k string) bool {
	_, ok := set[k]
	return ok
}
