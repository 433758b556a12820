package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// SetMembers replaces the set of accounts authorized on a workspace ("Save").
type SetMembers struct {
	Caller      Caller
	WorkspaceID string
	AccountIDs  []string
	IfMatch     *uint64
}

// MembersResult is the member set after a Save.
type MembersResult struct {
	WorkspaceID string   `json:"workspace_id"`
	AccountIDs  []string `json:"account_ids"`
	Version     uint64   `json:"version"`
}

// SetMembers handles the command: only the difference with the current set becomes
// events. Accounts are checked against the organization as loaded from the log.
func (a *App) SetMembers(ctx context.Context, cmd SetMembers) (MembersResult, error) {
	out := MembersResult{WorkspaceID: cmd.WorkspaceID}
	var accounts map[string]bool
	err := a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, _ uint64) error {
		accounts = make(map[string]bool, len(cmd.AccountIDs))
		for _, id := range cmd.AccountIDs {
			accounts[id] = o.HasAccount(id)
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID), cmd.IfMatch,
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permWorkspaceUpdate); err != nil {
				return nil, err
			}
			return w.SetMembers(cmd.AccountIDs, func(id string) bool { return accounts[id] }, a.now())
		},
		func(w *domain.Workspace) { out.AccountIDs = w.Members() })
	out.Version = version
	return out, err
}
