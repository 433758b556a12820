package commands

import (
	"context"
	"errors"

	"github.com/keyledger/keyledger/domain"
)

// DeleteAPIKey deletes a key for good and destroys its data key, so its plaintext
// can never be revealed again, even with the master key and the log.
type DeleteAPIKey struct {
	Caller      Caller
	WorkspaceID string
	KeyID       string
	IfMatch     IfMatch
}

// DeleteAPIKey handles the command. The deletion is appended first, then the data
// key destroyed; if destroying fails the caller gets the error and a retry (which
// finds the key already deleted) destroys it again.
func (a *App) DeleteAPIKey(ctx context.Context, cmd DeleteAPIKey) (uint64, error) {
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permKeyDelete); err != nil {
				return nil, err
			}
			if err := a.keyPrecondition(w, cmd.KeyID, cmd.IfMatch); err != nil {
				return nil, err
			}
			return w.DeleteAPIKey(cmd.KeyID, a.now())
		})
	if err != nil && !errors.Is(err, domain.ErrAPIKeyDeleted) {
		return 0, err
	}
	// Also for a key already deleted (ErrAPIKeyDeleted comes after the permission
	// check): a retry finishes a shredding that failed.
	if derr := a.deps.Vault.Destroy(ctx, cmd.KeyID); derr != nil {
		return 0, derr
	}
	return version, err
}
