package commands

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/keyledger/keyledger/domain"
)

// SetAccountWorkspaces replaces the set of workspaces one account is a direct
// member of (the administrator's per-account view): the difference becomes
// authorizations and revocations on each workspace, appended as one atomic batch.
type SetAccountWorkspaces struct {
	Caller       Caller
	AccountID    string
	WorkspaceIDs []string
	// Memberships reads the account's direct memberships (workspace id → the
	// position that authorized it, 0 when unknown) from the views once they include
	// the log up to at (0: as it stands). Each workspace they name is then checked
	// against the log itself.
	Memberships func(ctx context.Context, at uint64) (map[string]uint64, error)
}

// AccountWorkspacesResult is the account's direct memberships after the change.
type AccountWorkspacesResult struct {
	AccountID    string
	WorkspaceIDs []string
	// Version is the log position of the write (or, when nothing changed, of the
	// latest change of the workspaces involved).
	Version uint64
}

// SetAccountWorkspaces handles the command. The caller needs workspace:update (and,
// as a sub-account, to be authorized) on every workspace listed and every one whose
// membership changes, and account:read for another account than its own. A sub-account sets the memberships within its sight: those
// on workspaces it is not authorized on are neither listed nor changed, and the
// answer names none of them.
func (a *App) SetAccountWorkspaces(ctx context.Context, cmd SetAccountWorkspaces) (AccountWorkspacesResult, error) {
	out := AccountWorkspacesResult{AccountID: cmd.AccountID, WorkspaceIDs: []string{}}
	if err := cmd.Caller.can(permWorkspaceUpdate); err != nil {
		return out, err
	}
	if err := cmd.Caller.ReadsAccount(cmd.AccountID); err != nil { // as a GET of them needs
		return out, err
	}
	var verr domain.ValidationError
	if len(cmd.WorkspaceIDs) > domain.MaxRoleWorkspaces {
		verr.Add("workspace_ids", "too_many", fmt.Sprintf("at most %d workspaces, got %d", domain.MaxRoleWorkspaces, len(cmd.WorkspaceIDs)))
		return out, &verr
	}
	known, err := a.ownWorkspaces(ctx, cmd.Caller, cmd.WorkspaceIDs)
	if err != nil {
		return out, err
	}
	want := map[string]bool{}
	for i, id := range cmd.WorkspaceIDs {
		field := "workspace_ids[" + strconv.Itoa(i) + "]"
		switch {
		case want[id]:
			verr.Add(field, "duplicate_entry", "the workspace is listed twice")
		case !known[id]:
			verr.Add(field, "unknown_workspace", "not a workspace of this organization")
		}
		want[id] = true
	}
	if err := verr.Err(); err != nil {
		return out, err
	}
	err = a.orgs.read(ctx, cmd.Caller.OrganizationID, func(o *domain.Organization, _ uint64) error {
		if !o.HasAccount(cmd.AccountID) {
			return domain.ErrAccountNotFound
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	current, err := cmd.Memberships(ctx, 0)
	if err != nil {
		return out, err
	}
	now := a.now()
	outside := map[string]bool{} // memberships on workspaces the caller is not authorized on: left as they are
	for attempt := 1; ; attempt++ {
		ids := slices.Concat(cmd.WorkspaceIDs, slices.Collect(maps.Keys(current)))
		out.WorkspaceIDs = []string{}
		version, unchanged, err := a.workspaces.updateMany(ctx, ids, cmd.Caller.metadata(""),
			func(id string, w *domain.Workspace) ([]domain.Event, error) {
				if ownWorkspace(cmd.Caller, w) != nil {
					return nil, nil
				}
				if !want[id] && !cmd.Caller.authorizedOn(w) {
					outside[id] = true
					return nil, nil
				}
				if err := cmd.Caller.onWorkspace(w, permWorkspaceUpdate); err != nil {
					return nil, err // a listed one, member or not
				}
				if want[id] == w.IsMember(cmd.AccountID) {
					return nil, nil
				}
				if want[id] {
					if err := cmd.Caller.mayAuthorize(w, cmd.AccountID); err != nil {
						return nil, err
					}
				}
				return w.SetMember(cmd.AccountID, want[id], now)
			},
			func(id string, w *domain.Workspace) {
				if ownWorkspace(cmd.Caller, w) == nil && w.IsMember(cmd.AccountID) && cmd.Caller.authorizedOn(w) {
					out.WorkspaceIDs = append(out.WorkspaceIDs, id)
				}
			})
		if err != nil {
			return out, err
		}
		// The answer's position is past every round's write (an earlier round's
		// revocation among them).
		out.Version = max(out.Version, version)
		// The answer holds at its position only if what the write did not read was
		// not written before it: a membership outside the set authorized meanwhile
		// on another workspace (the views, once they reach the position, say), or
		// the account's membership changed on a workspace it read and left. Those
		// are older than the answer, so the set replaces them too: decide again.
		after, err := cmd.Memberships(ctx, out.Version)
		if err != nil {
			return out, err
		}
		current = map[string]uint64{}
		for id, at := range after {
			// One of unknown position was read in the first place, or projected by
			// an older version during a rolling update: never taken for older.
			if !want[id] && !outside[id] && at != 0 && at <= out.Version {
				current[id] = at
			}
		}
		moved := false
		for id, read := range unchanged {
			if moved, err = a.workspaces.writtenBetween(ctx, id, read, out.Version, membershipOf(cmd.AccountID)); err != nil || moved {
				break
			}
		}
		if err != nil {
			return out, err
		}
		if !moved && len(current) == 0 {
			return out, nil
		}
		if attempt == maxAttempts {
			return out, fmt.Errorf("the account's workspaces kept changing during %d attempts: %w", attempt, domain.ErrConflict)
		}
	}
}

// membershipOf says whether an event changes the account's direct membership.
func membershipOf(accountID string) func(domain.Event) bool {
	return func(e domain.Event) bool {
		switch e := e.(type) {
		case domain.MemberAuthorized:
			return e.AccountID == accountID
		case domain.MemberRevoked:
			return e.AccountID == accountID
		}
		return false
	}
}
