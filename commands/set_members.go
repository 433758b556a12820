package commands

import (
	"context"
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

// Member is an account authorized on a workspace.
type Member struct {
	AccountID    string
	Name         string
	Primary      bool
	AuthorizedAt time.Time
}

// SetMembers handles the command: only the difference with the current set becomes
// events. Accounts are checked against the organization as loaded from the log.
func (a *App) SetMembers(ctx context.Context, cmd SetMembers) (MembersResult, error) {
	out := MembersResult{WorkspaceID: cmd.WorkspaceID}
	var accounts map[string]domain.Account
	err := a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, _ uint64) error {
		accounts = make(map[string]domain.Account, len(cmd.AccountIDs))
		for _, id := range cmd.AccountIDs {
			if acc, ok := o.Account(id); ok {
				accounts[id] = acc
			}
		}
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
			return w.SetMembers(cmd.AccountIDs, func(id string) bool { _, ok := accounts[id]; return ok }, a.now())
		},
		func(w *domain.Workspace) {
			out.ETag = a.ETag(MembersResource(w.ID()), w.MembersVersion())
			out.Members = []Member{}
			for _, id := range w.Members() {
				acc := accounts[id]
				out.Members = append(out.Members, Member{AccountID: id, Name: acc.Name, Primary: acc.Primary, AuthorizedAt: w.AuthorizedAt(id)})
			}
		})
	out.Version = version
	return out, err
}

// MembersResource names a workspace's member set as a resource of its own, so its
// entity tag never equals the workspace's.
func MembersResource(workspaceID string) string { return workspaceID + "/members" }
