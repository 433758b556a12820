package commands

import (
	"context"
	"maps"
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
	// What the caller's roles authorize, as it authenticated, besides the view's.
	candidates := slices.AppendSeq(slices.Clone(memberOf), maps.Keys(c.Grants))
	slices.Sort(candidates)
	ws, err := a.MemberWorkspaces(ctx, c, slices.Compact(candidates))
	out.Workspaces = append([]string{}, ws...)
	return out, err
}
