package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// RevealAPIKey returns a live key's plaintext; every reveal is an event of its own.
type RevealAPIKey struct {
	Caller      Caller
	WorkspaceID string
	KeyID       string
}

// Revealed is a key's plaintext and the position of the audit event.
type Revealed struct {
	KeyID   string
	Secret  string
	Version uint64
}

// RevealAPIKey handles the command: the audit event is in the log before the
// plaintext is opened.
func (a *App) RevealAPIKey(ctx context.Context, cmd RevealAPIKey) (Revealed, error) {
	var sealed []byte
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permKeyRead); err != nil {
				return nil, err
			}
			events, err := w.RevealAPIKey(cmd.KeyID, a.now())
			if err == nil {
				k, _ := w.Key(cmd.KeyID)
				sealed = k.Sealed
			}
			return events, err
		})
	if err != nil {
		return Revealed{}, err
	}
	pt, err := a.deps.Vault.Open(ctx, cmd.KeyID, sealed)
	if err != nil {
		return Revealed{}, err
	}
	return Revealed{KeyID: cmd.KeyID, Secret: string(pt), Version: version}, nil
}
