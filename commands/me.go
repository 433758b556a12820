package commands

import (
	"context"
	"slices"

	"github.com/keyledger/keyledger/domain"
)

// Me is the caller as the organization (loaded from the log) knows it.
type Me struct {
	Account          AccountResult
	OrganizationID   string
	OrganizationName string
	Permissions      map[string][]string
	Workspaces       []string
}

// Me answers GET /v1/me; memberOf lists candidate workspace ids (from a view), each
// confirmed against the log (a direct membership, or a role of the caller as it
// authenticated).
func (a *App) Me(ctx context.Context, c Caller, memberOf []string) (Me, error) {
	var out Me
	err := a.orgs.read(ctx, c.OrganizationID, func(o *domain.Organization, version uint64) error {
		out = Me{Account: a.accountResult(o, c.AccountID), OrganizationID: o.ID(), OrganizationName: o.Name(), Permissions: map[string][]string{}}
		for _, m := range domain.GrantableModules() {
			out.Permissions[string(m)] = []string{}
		}
		for _, p := range o.Permissions(c.AccountID) {
			out.Permissions[string(p.Module)] = append(out.Permissions[string(p.Module)], string(p.Action))
		}
		return nil
	})
	if err != nil {
		return Me{}, err
	}
	out.Workspaces = []string{}
	candidates := slices.Clone(memberOf)
	for ws := range c.Grants { // what the caller's roles authorize, as it authenticated
		if !slices.Contains(candidates, ws) {
			candidates = append(candidates, ws)
		}
	}
	slices.Sort(candidates)
	for _, id := range candidates {
		err := a.workspaces.read(ctx, id, func(w *domain.Workspace, _ uint64) error {
			if ownWorkspace(c, w) == nil && c.authorizedOn(w) {
				out.Workspaces = append(out.Workspaces, id)
			}
			return nil
		})
		if err != nil {
			return Me{}, err
		}
	}
	return out, nil
}
