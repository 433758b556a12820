package commands

import (
	"bytes"
	"context"
	"errors"

	"github.com/keyledger/keyledger/domain"
)

// RepairDataKey deletes an API key whose plaintext can no longer be opened: the
// vault holds no data key for it, or one that does not open sealed, the value its
// creation event holds. Only a creation whose instance died after its append and
// before its data keys were stored leaves one (a live instance writes them again,
// restoreDataKeys); that creation was never answered, so no one holds the secret.
// It is called once the creation is over (the service's data key check follows the
// log), asks the vault first (the workspace is loaded only for a key that is lost),
// and decides nothing when the vault cannot tell. The deletion is appended as the
// key's creator's, as if its failed request had cleaned up after itself. deleted
// says whether it deleted.
func (a *App) RepairDataKey(ctx context.Context, workspaceID, keyID string, sealed []byte) (deleted bool, err error) {
	if lost, err := a.deps.Vault.Lost(ctx, keyID, sealed); err != nil || !lost {
		return false, err
	}
	whole, err := a.deps.Vault.Whole(ctx)
	if err != nil { // a vault that does not answer says nothing: the check tries again
		return false, err
	}
	if !whole {
		return false, ErrVaultNotWhole
	}
	var key domain.APIKey
	var orgID string
	err = a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error {
		key, _ = w.Key(keyID)
		orgID = w.OrganizationID()
		return nil
	})
	if err != nil || key.ID == "" || key.Deleted || !bytes.Equal(key.Sealed, sealed) {
		return false, err
	}
	meta := domain.Metadata{OrganizationID: orgID, WorkspaceID: workspaceID, ActorID: key.CreatedBy}
	_, events, err := a.workspaces.update(ctx, workspaceID, meta, func(w *domain.Workspace) ([]domain.Event, error) {
		if k, _ := w.Key(keyID); !bytes.Equal(k.Sealed, sealed) {
			return nil, nil // not the key that was checked
		}
		return w.DeleteAPIKey(keyID, a.now())
	})
	if errors.Is(err, domain.ErrAPIKeyDeleted) {
		return false, nil
	}
	if err != nil || len(events) == 0 {
		return false, err
	}
	return true, a.deps.Vault.Destroy(ctx, keyID)
}

// ErrVaultNotWhole: the vault has lost its canary, so its data keys too; a key
// whose data key is missing says nothing then, and none is deleted.
var ErrVaultNotWhole = errors.New("the vault has lost the canary written beside its data keys (its bucket was emptied or recreated?): no key is judged by its data key")
