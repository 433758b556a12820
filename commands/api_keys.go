package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// timeFormat is how results render instants: as encoding/json renders time.Time,
// so a create response and a later read show the same string.
const timeFormat = time.RFC3339Nano

// APIKeyResult is one key as a write left it. Secret is the plaintext, present only
// in the response of the create (and of a replay of it); it is never stored with an
// idempotency record.
type APIKeyResult struct {
	KeyID        string   `json:"key_id"`
	WorkspaceID  string   `json:"workspace_id"`
	BusinessType string   `json:"business_type"`
	Name         string   `json:"name,omitempty"`
	Allowlist    []string `json:"allowlist"`
	Note         string   `json:"note"`
	QPSLimit     *int     `json:"qps_limit"`
	Masked       string   `json:"masked_secret"`
	BatchID      string   `json:"batch_id,omitempty"`
	CreatedAt    string   `json:"created_at"`
	Secret       string   `json:"-"`
}

// CreatedAPIKeys is the result of a single or a batch creation.
type CreatedAPIKeys struct {
	WorkspaceID string         `json:"workspace_id"`
	BatchID     string         `json:"batch_id,omitempty"`
	Keys        []APIKeyResult `json:"keys"`
	Version     uint64         `json:"version"`
}

// keySpec is a validated key before its secret exists.
type keySpec struct {
	businessType domain.BusinessType
	name         string
	allowlist    domain.Allowlist
	note         string
	qps          domain.QPS
}

// createKeys generates, hashes and seals a secret per spec and appends all keys as
// one atomic batch.
func (a *App) createKeys(ctx context.Context, c Caller, workspaceID string, specs []keySpec, batchID string) (CreatedAPIKeys, error) {
	// Authorized before any data key is written. For the primary account only
	// ownership matters, which never changes: the cached state answers without a
	// round trip. The check is repeated in the decision below.
	check := func(w *domain.Workspace) error { return c.onWorkspace(w, permKeyCreate) }
	var err error
	if c.Primary {
		err = a.workspaces.peek(ctx, workspaceID, check)
	} else {
		err = a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error { return check(w) })
	}
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	keys := make([]domain.NewAPIKey, len(specs))
	ids := make([]string, len(specs))
	plaintexts := make([][]byte, len(specs))
	secrets := make(map[string]string, len(specs))
	for i, s := range specs {
		cred, err := domain.GenerateCredential(a.deps.Random, s.businessType.CredentialKind())
		if err != nil {
			return CreatedAPIKeys{}, err
		}
		id := domain.NewAPIKeyID()
		ids[i], plaintexts[i], secrets[id] = id, []byte(cred.String()), cred.String()
		keys[i] = domain.NewAPIKey{
			ID: id, BusinessType: s.businessType, Name: s.name, Allowlist: s.allowlist, Note: s.note,
			QPSLimit: s.qps, SecretHash: domain.HashCredential(a.deps.Pepper, cred), Masked: cred.Masked(),
		}
	}
	sealed, err := a.deps.Vault.SealMany(ctx, ids, plaintexts)
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	for i := range keys {
		keys[i].Sealed = sealed[i]
	}
	at := a.now()
	version, events, err := a.workspaces.update(ctx, workspaceID, c.metadata(workspaceID), nil, func(w *domain.Workspace) ([]domain.Event, error) {
		if err := check(w); err != nil {
			return nil, err
		}
		return w.CreateAPIKeys(keys, batchID, at)
	})
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	out := CreatedAPIKeys{WorkspaceID: workspaceID, BatchID: batchID, Version: version, Keys: make([]APIKeyResult, len(events))}
	for i, ev := range events {
		e := ev.(domain.APIKeyCreated)
		out.Keys[i] = APIKeyResult{
			KeyID: e.KeyID, WorkspaceID: workspaceID, BusinessType: string(e.BusinessType), Name: e.Name,
			Allowlist: e.Allowlist, Note: e.Note, QPSLimit: qpsPtr(e.QPSLimit), Masked: e.Masked,
			BatchID: e.BatchID, CreatedAt: e.At.Format(timeFormat), Secret: secrets[e.KeyID],
		}
	}
	return out, nil
}

// rehydrateSecrets fills the plaintexts of a replayed creation from the vault; a
// key deleted since has no plaintext any more.
func (a *App) rehydrateSecrets(ctx context.Context, r *CreatedAPIKeys) error {
	sealed := map[string][]byte{}
	err := a.workspaces.read(ctx, r.WorkspaceID, func(w *domain.Workspace, _ uint64) error {
		for _, k := range r.Keys {
			if key, ok := w.Key(k.KeyID); ok && !key.Deleted {
				sealed[k.KeyID] = key.Sealed
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, k := range r.Keys {
		s, ok := sealed[k.KeyID]
		if !ok {
			continue
		}
		pt, err := a.deps.Vault.Open(ctx, k.KeyID, s)
		if err != nil {
			return err
		}
		r.Keys[i].Secret = string(pt)
	}
	return nil
}

func apiKeyResult(workspaceID string, k domain.APIKey) APIKeyResult {
	return APIKeyResult{
		KeyID: k.ID, WorkspaceID: workspaceID, BusinessType: string(k.BusinessType), Name: k.Name,
		Allowlist: k.Allowlist, Note: k.Note, QPSLimit: qpsPtr(k.QPSLimit), Masked: k.Masked,
		CreatedAt: k.CreatedAt.Format(timeFormat),
	}
}

func qpsPtr(q domain.QPS) *int {
	if q == 0 {
		return nil
	}
	v := int(q)
	return &v
}
