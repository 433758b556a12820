package commands

import (
	"context"

	"github.com/keyledger/keyledger/domain"
)

// UpdateAPIKey edits a key's allowlist and note, and a Search key's name and QPS.
// Nil fields stay as they are.
type UpdateAPIKey struct {
	Caller      Caller
	WorkspaceID string
	KeyID       string
	Name        *string
	// ClearName says the key has no name: what a MaaS key is (a Search key must
	// keep its name).
	ClearName bool
	Allowlist *[]string
	Note      *string
	// QPSLimit sets a limit; ClearQPSLimit makes the key unlimited.
	QPSLimit      *int
	ClearQPSLimit bool
	IfMatch       IfMatch
}

// UpdateAPIKey handles the command and returns the key as edited.
func (a *App) UpdateAPIKey(ctx context.Context, cmd UpdateAPIKey) (APIKeyResult, uint64, error) {
	patch, err := cmd.validate()
	if err != nil {
		return APIKeyResult{}, 0, err
	}
	var out APIKeyResult
	version, _, err := a.workspaces.update(ctx, cmd.WorkspaceID, cmd.Caller.metadata(cmd.WorkspaceID),
		func(w *domain.Workspace) ([]domain.Event, error) {
			if err := cmd.Caller.onWorkspace(w, permKeyUpdate); err != nil {
				return nil, err
			}
			if err := a.keyPrecondition(w, cmd.KeyID, cmd.IfMatch); err != nil {
				return nil, err
			}
			return w.UpdateAPIKey(cmd.KeyID, patch, a.now())
		},
		func(w *domain.Workspace) {
			k, _ := w.Key(cmd.KeyID)
			out = a.apiKeyResult(w.ID(), k)
		})
	if err != nil {
		return out, version, err
	}
	keys := []APIKeyResult{out}
	err = a.nameActors(ctx, cmd.Caller.OrganizationID, keys)
	return keys[0], version, err
}

// keyPrecondition checks If-Match against a live key's own version; a missing or
// deleted key is left to the decision to name.
func (a *App) keyPrecondition(w *domain.Workspace, keyID string, m IfMatch) error {
	k, ok := w.Key(keyID)
	if !ok || k.Deleted {
		return nil
	}
	return a.precondition(m, k.ID, k.Version)
}

func (cmd UpdateAPIKey) validate() (domain.APIKeyPatch, error) {
	var verr domain.ValidationError
	var p domain.APIKeyPatch
	switch {
	case cmd.ClearName:
		none := ""
		p.Name = &none
	case cmd.Name != nil:
		n, err := domain.ParseName("name", *cmd.Name)
		verr.Merge("", err)
		p.Name = &n
	}
	if cmd.Allowlist != nil {
		al, err := domain.ParseAllowlist(*cmd.Allowlist)
		verr.Merge("allowlist", err)
		p.Allowlist = &al
	}
	if cmd.Note != nil {
		n, err := domain.ParseText("note", *cmd.Note, domain.MaxNoteLen)
		verr.Merge("", err)
		p.Note = &n
	}
	switch {
	case cmd.ClearQPSLimit:
		var unlimited domain.QPS
		p.QPSLimit = &unlimited
	case cmd.QPSLimit != nil:
		q, err := domain.ParseQPS("qps_limit", cmd.QPSLimit)
		verr.Merge("", err)
		p.QPSLimit = &q
	}
	return p, verr.Err()
}
