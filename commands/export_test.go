package commands

import "context"

// RestoreDataKeys is restoreDataKeys, for the test of a key deleted while its data
// key was written again.
func (a *App) RestoreDataKeys(ctx context.Context, workspaceID string, ids []string, sealed, wrapped [][]byte) error {
	return a.restoreDataKeys(ctx, workspaceID, ids, sealed, wrapped)
}
