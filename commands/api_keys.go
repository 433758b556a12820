package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/fault"
)

// APIKeyResult is one key as a write left it. Secret is the plaintext, present only
// in the response of the create (and of a replay of it); it is never stored with an
// idempotency record.
type APIKeyResult struct {
	KeyID        string
	WorkspaceID  string
	BusinessType string
	Name         string
	Allowlist    []string
	Note         string
	QPSLimit     *int
	Masked       string
	BatchID      string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// LastRevealedAt is nil until the plaintext is first revealed.
	LastRevealedAt *time.Time
	// CreatedBy and UpdatedBy are the accounts that created it and changed it last.
	CreatedBy, UpdatedBy Actor
	// ETag is the key's entity tag.
	ETag   string
	Secret string
}

// CreatedAPIKeys is the result of a single or a batch creation.
type CreatedAPIKeys struct {
	WorkspaceID string
	BatchID     string
	Keys        []APIKeyResult
	Version     uint64
	// Replayed is set when this answers a retry with an earlier request's result;
	// the secrets it holds were revealed again, and that is in the log.
	Replayed bool
}

// keySpec is a validated key before its secret exists.
type keySpec struct {
	businessType domain.BusinessType
	name         string
	allowlist    domain.Allowlist
	note         string
	qps          domain.QPS
}

// idempotentKeys runs a key creation once per Idempotency-Key. The caller is
// authorized before any data key is written and before an earlier result is looked
// up; a replay hands the plaintexts out again, so it is recorded as their reveal.
func (a *App) idempotentKeys(ctx context.Context, c Caller, idem Idempotency, workspaceID string, specs []keySpec, batch bool) (CreatedAPIKeys, error) {
	r, replayed, err := idempotent(ctx, a, c, idem, idempotentCommand[CreatedAPIKeys]{
		authorize: func() error { return a.authorizeKeyCreation(ctx, c, workspaceID) },
		run:       func(id identity) (CreatedAPIKeys, error) { return a.createKeys(ctx, c, workspaceID, specs, batch, id) },
		find: func(id identity) (CreatedAPIKeys, bool, error) {
			return a.findKeys(ctx, workspaceID, len(specs), batch, id)
		},
		replay: func(r *CreatedAPIKeys) error { return a.replaySecrets(ctx, c, r) },
	})
	r.Replayed = replayed
	if err != nil {
		return r, err
	}
	return r, a.nameActors(ctx, c.OrganizationID, r.Keys)
}

// keyNames are the ids of the keys a creation makes, and its batch id ("" for one
// key).
func keyNames(id identity, n int, batch bool) ([]string, string) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = domain.APIKeyIDOf(id.ulid("key", i))
	}
	if !batch {
		return ids, ""
	}
	return ids, "batch_" + id.ulid("batch", 0).String()
}

// findKeys looks in the workspace for the keys an attempt named id created: all of
// them (one atomic append), or none.
func (a *App) findKeys(ctx context.Context, workspaceID string, n int, batch bool, id identity) (CreatedAPIKeys, bool, error) {
	ids, batchID := keyNames(id, n, batch)
	out := CreatedAPIKeys{WorkspaceID: workspaceID, BatchID: batchID}
	err := a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, version uint64) error {
		for _, k := range ids {
			key, ok := w.Key(k)
			if !ok {
				out.Keys = nil
				return nil
			}
			out.Keys = append(out.Keys, a.apiKeyResult(workspaceID, key))
		}
		out.Version = version
		return nil
	})
	return out, len(out.Keys) == n, err
}

// authorizeKeyCreation: for the primary account only ownership matters, which never
// changes, so the cached state answers without a round trip. The check is repeated
// in the decision.
func (a *App) authorizeKeyCreation(ctx context.Context, c Caller, workspaceID string) error {
	check := func(w *domain.Workspace) error { return c.onWorkspace(w, permKeyCreate) }
	if c.Primary {
		return a.workspaces.peek(ctx, workspaceID, check)
	}
	return a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error { return check(w) })
}

// createKeys generates, hashes and seals a secret per spec and appends all keys as
// one atomic batch. The caller was authorized by idempotentKeys.
func (a *App) createKeys(ctx context.Context, c Caller, workspaceID string, specs []keySpec, batch bool, name identity) (CreatedAPIKeys, error) {
	check := func(w *domain.Workspace) error { return c.onWorkspace(w, permKeyCreate) }
	keys := make([]domain.NewAPIKey, len(specs))
	ids, batchID := keyNames(name, len(specs), batch)
	plaintexts := make([][]byte, len(specs))
	secrets := make(map[string]string, len(specs))
	for i, s := range specs {
		cred, err := domain.GenerateCredential(a.deps.Random, s.businessType.CredentialKind())
		if err != nil {
			return CreatedAPIKeys{}, err
		}
		id := ids[i]
		plaintexts[i], secrets[id] = []byte(cred.String()), cred.String()
		keys[i] = domain.NewAPIKey{
			ID: id, BusinessType: s.businessType, Name: s.name, Allowlist: s.allowlist, Note: s.note,
			QPSLimit: s.qps, SecretHash: domain.HashCredential(a.deps.Pepper, cred), Masked: cred.Masked(),
		}
	}
	sealed, wrapped, err := a.deps.Vault.Seal(ids, plaintexts)
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	for i := range keys {
		keys[i].Sealed = sealed[i]
	}
	// The data keys are written while the keys are appended, and both are awaited:
	// no answer before both are stored.
	stored := a.deps.Vault.Store(ctx, ids, wrapped)
	at := a.now()
	out := CreatedAPIKeys{WorkspaceID: workspaceID, BatchID: batchID, Keys: make([]APIKeyResult, len(keys))}
	meta := c.metadata(workspaceID)
	meta.EventID = name.eventIDs()
	var refused error // the last decision's refusal: nothing of this attempt is in the log
	version, _, err := a.workspaces.update(ctx, workspaceID, meta, func(w *domain.Workspace) ([]domain.Event, error) {
		refused = nil
		if _, exists := w.Key(ids[0]); exists { // its replay checks the caller again
			return nil, errAlreadyApplied
		}
		if refused = check(w); refused != nil {
			return nil, refused
		}
		events, err := w.CreateAPIKeys(keys, batchID, at)
		refused = err
		return events, err
	}, func(w *domain.Workspace) {
		for i, k := range keys {
			key, _ := w.Key(k.ID)
			out.Keys[i] = a.apiKeyResult(workspaceID, key)
			out.Keys[i].Secret = secrets[k.ID]
		}
	})
	serr := stored()
	switch {
	case refused != nil && err == refused: // not a log that failed after a stale refusal
		// Refused: no key of this request is in the log (an earlier attempt's would
		// have been found), so the data keys written for them go.
		if derr := a.destroyDataKeys(ctx, ids); derr != nil {
			return CreatedAPIKeys{}, errors.Join(err, derr)
		}
	case refused == nil && errors.Is(err, domain.ErrConflict):
		// Still conflicting when the retries ran out. The last conflict may be an
		// earlier attempt's copy of these very events landing (a duplicate), so the
		// data keys go only for the keys the log does not hold.
		if derr := a.destroyUnlogged(ctx, workspaceID, ids); derr != nil {
			return CreatedAPIKeys{}, errors.Join(err, derr)
		}
	case serr != nil && (err == nil || errors.Is(err, fault.ErrUnavailable)):
		// The keys may be in the log (for sure when err is nil), sealed under data
		// keys whose write failed.
		err = errors.Join(err, a.restoreDataKeys(ctx, workspaceID, ids, sealed, wrapped))
	}
	if err != nil {
		return CreatedAPIKeys{}, err
	}
	out.Version = version
	return out, nil
}

// destroyDataKeys destroys the data keys of keys the log does not hold, or holds
// deleted, each tried (nothing else will: the data key check follows the log).
func (a *App) destroyDataKeys(ctx context.Context, ids []string) error {
	var err error
	for _, id := range ids {
		err = errors.Join(err, a.deps.Vault.Destroy(context.WithoutCancel(ctx), id))
	}
	return err
}

// destroyUnlogged destroys the data keys of those of ids the workspace, as the log
// has it now, does not hold.
func (a *App) destroyUnlogged(ctx context.Context, workspaceID string, ids []string) error {
	var absent []string
	err := a.workspaces.read(context.WithoutCancel(ctx), workspaceID, func(w *domain.Workspace, _ uint64) error {
		for _, id := range ids {
			if _, ok := w.Key(id); !ok {
				absent = append(absent, id)
			}
		}
		return nil
	})
	if err != nil {
		return fault.Unavailable(err)
	}
	return a.destroyDataKeys(ctx, absent)
}

// restoreDataKeys writes again the data keys whose first write failed, for the keys
// the log holds with these sealed values (so these data keys open them): a write
// that timed out, or a data key an earlier attempt of the request left. A key
// deleted meanwhile (a deletion destroys after it appends; the data key check may
// have found it lost) has its data key destroyed again and fails the creation. Its
// errors are the vault's or the log's: Unavailable, and the data key check deletes
// a key still left without its data key once its creation is over.
func (a *App) restoreDataKeys(ctx context.Context, workspaceID string, ids []string, sealed, wrapped [][]byte) error {
	ctx = context.WithoutCancel(ctx) // the keys are in the log: finish
	var ours, deleted []string
	var ourKeys [][]byte
	find := func() error {
		ours, ourKeys, deleted = nil, nil, nil
		return a.workspaces.read(ctx, workspaceID, func(w *domain.Workspace, _ uint64) error {
			for i, id := range ids {
				k, ok := w.Key(id)
				switch {
				case !ok:
				case k.Deleted: // its sealed value is gone with it; the id is this request's
					deleted = append(deleted, id)
				case !bytes.Equal(k.Sealed, sealed[i]):
				default:
					ours, ourKeys = append(ours, id), append(ourKeys, wrapped[i])
				}
			}
			return nil
		})
	}
	if err := find(); err != nil {
		return fault.Unavailable(err)
	}
	err := a.deps.Vault.Restore(ctx, ours, ourKeys)
	if ferr := find(); ferr != nil { // what was deleted while the data keys were written
		return fault.Unavailable(errors.Join(err, ferr))
	}
	err = errors.Join(err, a.destroyDataKeys(ctx, deleted))
	if err == nil && len(deleted) > 0 {
		err = fmt.Errorf("%d of the keys were deleted while their data keys were written", len(deleted))
	}
	return fault.Unavailable(err)
}

// replaySecrets fills the plaintexts of a replayed creation from the vault. The
// reveal events are in the log before any plaintext is opened, in one append under
// the caller's own check (it creates and reads keys there: a reveal needs read); the answer shows the keys as that append left them, at
// its position. A key deleted since has no plaintext any more: the first response
// cannot be given again (ErrIdempotentResultGone).
func (a *App) replaySecrets(ctx context.Context, c Caller, r *CreatedAPIKeys) error {
	sealed := map[string][]byte{}
	version, _, err := a.workspaces.update(ctx, r.WorkspaceID, c.metadata(r.WorkspaceID), func(w *domain.Workspace) ([]domain.Event, error) {
		if err := c.onWorkspace(w, permKeyCreate); err != nil {
			return nil, err
		}
		if err := c.can(permKeyRead); err != nil { // handing them out again is a reveal
			return nil, err
		}
		clear(sealed)
		var events []domain.Event
		at := a.now()
		for _, k := range r.Keys {
			revealed, err := w.RevealAPIKey(k.KeyID, at)
			if errors.Is(err, domain.ErrAPIKeyDeleted) {
				return nil, ErrIdempotentResultGone // its plaintext is gone for good
			}
			if err != nil {
				return nil, err
			}
			key, _ := w.Key(k.KeyID)
			sealed[k.KeyID] = key.Sealed
			events = append(events, revealed...)
		}
		return events, nil
	}, func(w *domain.Workspace) { // the keys as they are now, this reveal included
		for i, k := range r.Keys {
			key, _ := w.Key(k.KeyID)
			r.Keys[i] = a.apiKeyResult(r.WorkspaceID, key)
		}
	})
	if err != nil {
		return err
	}
	r.Version = version
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

func (a *App) apiKeyResult(workspaceID string, k domain.APIKey) APIKeyResult {
	r := APIKeyResult{
		KeyID: k.ID, WorkspaceID: workspaceID, BusinessType: string(k.BusinessType), Name: k.Name,
		Allowlist: k.Allowlist, Note: k.Note, QPSLimit: qpsPtr(k.QPSLimit), Masked: k.Masked, BatchID: k.BatchID,
		CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, ETag: a.ETag(k.ID, k.Version), CreatedBy: Actor{ID: k.CreatedBy}, UpdatedBy: Actor{ID: k.UpdatedBy},
	}
	if !k.LastRevealedAt.IsZero() {
		t := k.LastRevealedAt
		r.LastRevealedAt = &t
	}
	return r
}

func qpsPtr(q domain.QPS) *int {
	if q == 0 {
		return nil
	}
	v := int(q)
	return &v
}
