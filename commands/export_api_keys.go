package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// ExportAPIKeys records, before any row is written, that the caller exports the
// workspace's key list (masked) with a filter and columns: no export without its
// audit event.
type ExportAPIKeys struct {
	Caller       Caller
	WorkspaceID  string
	BusinessType string
	BatchID      string
	Fields       []string
}

// ExportAPIKeys handles the command; it needs api_key:read on the workspace and
// returns the log position of the audit event.
func (a *App) ExportAPIKeys(ctx context.Context, cmd ExportAPIKeys) (uint64, error) {
	fields := cmd.Fields
	if fields == nil {
		fields = []string{}
	}
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permKeyRead); err != nil {
				return nil, err
			}
			return w.ExportAPIKeys(cmd.BusinessType, cmd.BatchID, fields, a.now())
		})
	return version, err
}
