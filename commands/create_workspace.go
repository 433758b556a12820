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
	WorkspaceID    string    `json:"workspace_id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// ETag is the workspace's entity tag; Version the log position of the write.
	ETag    string `json:"etag"`
	Version uint64 `json:"version"`
	// Replayed is set when this answers a retry with an earlier request's result.
	Replayed bool `json:"-"`
}

// CreateWorkspace handles the command.
func (a *App) CreateWorkspace(ctx context.Context, cmd CreateWorkspace) (WorkspaceResult, error) {
	r, replayed, err := idempotent(ctx, a, cmd.Caller, cmd.Idempotency, idempotentCommand[WorkspaceResult]{
		authorize: func() error { return cmd.Caller.can(permWorkspaceCreate) },
		run:       func() (WorkspaceResult, error) { return a.createWorkspace(ctx, cmd) },
	})
	r.Replayed = replayed
	return r, err
}

func (a *App) createWorkspace(ctx context.Context, cmd CreateWorkspace) (WorkspaceResult, error) {
	id := domain.NewWorkspaceID()
	at := a.now()
	var out WorkspaceResult
	version, _, err := a.workspaces.update(ctx, id, cmd.Caller.metadata(id), func(w *domain.Workspace) ([]domain.Event, error) {
		events, err := w.Create(cmd.Caller.OrganizationID, cmd.Name, cmd.Description, at)
		if err == nil && !cmd.Caller.Primary { // a sub-account may use what it creates
			events = append(events, domain.MemberAuthorized{AccountID: cmd.Caller.AccountID, At: at})
		}
		return events, err
	}, func(w *domain.Workspace) { out = a.workspaceResult(w) })
	out.Version = version
	return out, err
}
