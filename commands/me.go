package commands

import (
	"context"

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

// Me answers GET /v1/me; memberOf lists the caller's workspaces as a view has them
// (see AuthorizedWorkspaces).
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
	ws, err := a.AuthorizedWorkspaces(ctx, c, memberOf)
	out.Workspaces = append([]string{}, ws...)
	return out, err
}
