package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// UpdateWorkspace renames a workspace and/or changes its description.
type UpdateWorkspace struct {
	Caller      Caller
	WorkspaceID string
	Name        *string
	Description *string
	IfMatch     IfMatch
}

// UpdateWorkspace handles the command. An edit that changes nothing appends nothing.
func (a *App) UpdateWorkspace(ctx context.Context, cmd UpdateWorkspace) (WorkspaceResult, error) {
	var out WorkspaceResult
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permWorkspaceUpdate); err != nil {
				return nil, err
			}
			if err := a.precondition(cmd.IfMatch, w.ID(), w.Version()); err != nil {
				return nil, err
			}
			return w.Update(cmd.Name, cmd.Description, a.now())
		},
		func(w *domain.Workspace) { out = a.workspaceResult(w) })
	out.Version = version
	return out, err
}

func (a *App) workspaceResult(w *domain.Workspace) WorkspaceResult {
	return WorkspaceResult{
		WorkspaceID: w.ID(), OrganizationID: w.OrganizationID(), Name: w.Name(), Description: w.Description(),
		CreatedAt: w.CreatedAt(), UpdatedAt: w.UpdatedAt(), ETag: a.ETag(w.ID(), w.Version()),
	}
}
