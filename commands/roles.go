package commands

import (
	"context"
	"time"

	"github.com/keyledger/keyledger/domain"
)

// RoleInput is a role as a client describes it; nil fields stay as they are.
type RoleInput struct {
	Name        *string
	Permissions *[]string
	Users       *[]string
	// Workspaces are the workspaces the role authorizes its users on.
	Workspaces *[]string
}

// RoleResult is a role as a write left it.
type RoleResult struct {
	RoleID      string
	Name        string
	Permissions []string
	Users       []string
	Workspaces  []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// CreatedBy and UpdatedBy are the accounts that created it and changed it last.
	CreatedBy, UpdatedBy Actor
	// ETag is the role's entity tag; Version the log position of the write.
	ETag    string
	Version uint64
	// Replayed is set when this answers a retry with an earlier request's result.
	Replayed bool
}

func (in RoleInput) validate() (domain.RoleSpec, error) {
	var verr domain.ValidationError
	var spec domain.RoleSpec
	if in.Name != nil {
		n, err := domain.ParseName("name", *in.Name)
		verr.Merge("", err)
		spec.Name = &n
	}
	if in.Permissions != nil {
		perms := make([]domain.Permission, 0, len(*in.Permissions))
		for i, s := range *in.Permissions {
			p, err := domain.ParsePermission(s)
			if err != nil {
				verr.Add("permissions["+itoa(i)+"]", "invalid_permission", err.Error())
				continue
			}
			perms = append(perms, p)
		}
		spec.Permissions = &perms
	}
	spec.Users, spec.Workspaces = in.Users, in.Workspaces
	return spec, verr.Err()
}

// knownWorkspaces tells the role decision which workspaces it lists are the
// caller's organization's.
func (a *App) knownWorkspaces(ctx context.Context, c Caller, spec *domain.RoleSpec) error {
	if spec.Workspaces == nil || len(*spec.Workspaces) > domain.MaxRoleWorkspaces {
		return nil
	}
	known, err := a.ownWorkspaces(ctx, c, *spec.Workspaces)
	spec.IsWorkspace = func(id string) bool { return known[id] }
	return err
}

// ownWorkspaces tells which of the listed workspaces are the caller's
// organization's. Workspaces are never deleted nor moved: a cached one answers
// without a round trip (peek), one not known yet is read from the log.
func (a *App) ownWorkspaces(ctx context.Context, c Caller, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, id := range ids {
		if _, seen := known[id]; seen || !domain.IsWorkspaceID(id) {
			continue
		}
		err := a.workspaces.peek(ctx, id, func(w *domain.Workspace) error {
			known[id] = ownWorkspace(c, w) == nil
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return known, nil
}

func (a *App) roleResult(o *domain.Organization, r domain.Role) RoleResult {
	out := RoleResult{RoleID: r.ID, Name: r.Name, Permissions: make([]string, len(r.Permissions)), Users: r.Users, Workspaces: r.Workspaces,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, ETag: a.ETag(r.ID, r.Version), CreatedBy: actorOf(o, r.CreatedBy), UpdatedBy: actorOf(o, r.UpdatedBy)}
	for i, p := range r.Permissions {
		out.Permissions[i] = p.String()
	}
	if out.Users == nil {
		out.Users = []string{}
	}
	if out.Workspaces == nil {
		out.Workspaces = []string{}
	}
	return out
}
