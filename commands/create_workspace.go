package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// CreateWorkspace opens a workspace in the caller's organization.
type CreateWorkspace struct {
	Caller      Caller
	Idempotency Idempotency
	Name        string
	Description string
}

// WorkspaceResult is the workspace as a write left it.
type WorkspaceResult struct {
	WorkspaceID    string
	OrganizationID string
	Name           string
	Description    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// ETag is the workspace's entity tag; Version the log position of the write.
	ETag    string
	Version uint64
	// Replayed is set when this answers a retry with an earlier request's result.
	Replayed bool
}

// CreateWorkspace handles the command.
func (a *App) CreateWorkspace(ctx context.Context, cmd CreateWorkspace) (WorkspaceResult, error) {
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[WorkspaceResult]{
		authorize: func() error { return cmd.Caller.can(permWorkspaceCreate) },
		run:       func(id identity) (WorkspaceResult, error) { return a.createWorkspace(ctx, cmd, id) },
		find: func(id identity) (WorkspaceResult, bool, error) {
			var out WorkspaceResult
			ws := domain.WorkspaceIDOf(id.ulid("workspace", 0))
			err := a.workspaces.read(ctx, ws, func(w *domain.Workspace, version uint64) error {
				if ownWorkspace(cmd.Caller, w) == nil {
					out = a.workspaceResult(w)
					out.Version = version
				}
				return nil
			})
			return out, out.WorkspaceID != "", err
		},
		// Answered again only to an account still authorized on it, as a GET is.
		replay: func(r *WorkspaceResult) error { return a.AuthorizeMember(ctx, cmd.Caller, r.WorkspaceID) },
	})
	r.Replayed = replayed
	return r, err
}

func (a *App) createWorkspace(ctx context.Context, cmd CreateWorkspace, name identity) (WorkspaceResult, error) {
	id := domain.WorkspaceIDOf(name.ulid("workspace", 0))
	at := a.now()
	var out WorkspaceResult
	meta := cmd.Caller.metadata(id)
	meta.EventID = name.eventIDs()
	version, _, err := a.workspaces.update(ctx, id, meta, func(w *domain.Workspace) ([]domain.Event, error) {
		if w.Exists() && name.set {
			return nil, errAlreadyApplied
		}
		events, err := w.Create(cmd.Caller.OrganizationID, cmd.Name, cmd.Description, at)
		if err == nil && !cmd.Caller.Primary { // a sub-account may use what it creates
			events = append(events, domain.MemberAuthorized{AccountID: cmd.Caller.AccountID, At: at})
		}
		return events, err
	}, func(w *domain.Workspace) { out = a.workspaceResult(w) })
	out.Version = version
	return out, err
}
