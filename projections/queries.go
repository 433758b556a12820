package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Queries gathers the questions asked of the views, each answered by the view it
// belongs to, and waiting until the views include a log position.
type Queries struct {
	Pool   *pgxpool.Pool
	Runner *Runner
	// Log tells where the log ends, for CaughtUp and LogEnd.
	Log LogEnd
}

// CaughtUp blocks until the views include the log as it stands now.
func (q Queries) CaughtUp(ctx context.Context) error { return q.Runner.CaughtUp(ctx, q.Log) }

// LogEnd is where the log ends.
func (q Queries) LogEnd(ctx context.Context) (uint64, error) { return q.Log.Position(ctx) }

// WaitFor blocks until the views include position pos, or ctx ends.
func (q Queries) WaitFor(ctx context.Context, pos uint64) error { return q.Runner.WaitFor(ctx, pos) }

// Position is the last log position this instance committed to the views.
func (q Queries) Position() uint64 { return q.Runner.Position() }

// Workspace is Workspaces.Get.
func (q Queries) Workspace(ctx context.Context, orgID, id string) (WorkspaceRow, error) {
	return Workspaces{q.Pool}.Get(ctx, orgID, id)
}

// Workspaces is Workspaces.List.
func (q Queries) Workspaces(ctx context.Context, orgID string, page Page) ([]WorkspaceRow, string, error) {
	return Workspaces{q.Pool}.List(ctx, orgID, page)
}

// WorkspacesOfMember is Workspaces.ListForMember.
func (q Queries) WorkspacesOfMember(ctx context.Context, orgID, accountID string, page Page) ([]WorkspaceRow, string, error) {
	return Workspaces{q.Pool}.ListForMember(ctx, orgID, accountID, page)
}

// DirectMemberOf is Workspaces.DirectMemberOf.
func (q Queries) DirectMemberOf(ctx context.Context, orgID, accountID string) ([]Membership, error) {
	return Workspaces{q.Pool}.DirectMemberOf(ctx, orgID, accountID)
}

// MemberOf is Workspaces.MemberOf.
func (q Queries) MemberOf(ctx context.Context, orgID, accountID string, primary bool) ([]string, error) {
	return Workspaces{q.Pool}.MemberOf(ctx, orgID, accountID, primary)
}

// Members is Members.List.
func (q Queries) Members(ctx context.Context, orgID, workspaceID string) ([]MemberRow, error) {
	return Members{q.Pool}.List(ctx, orgID, workspaceID)
}

// MemberCandidates is Members.Candidates.
func (q Queries) MemberCandidates(ctx context.Context, orgID, workspaceID string) ([]CandidateRow, error) {
	return Members{q.Pool}.Candidates(ctx, orgID, workspaceID)
}

// Account is Accounts.Get.
func (q Queries) Account(ctx context.Context, orgID, id string) (AccountRow, error) {
	return Accounts{q.Pool}.Get(ctx, orgID, id)
}

// Accounts is Accounts.List.
func (q Queries) Accounts(ctx context.Context, orgID string, page Page) ([]AccountRow, string, error) {
	return Accounts{q.Pool}.List(ctx, orgID, page)
}

// APIKey is APIKeys.Get.
func (q Queries) APIKey(ctx context.Context, orgID, workspaceID, keyID string) (APIKeyRow, error) {
	return APIKeys{q.Pool}.Get(ctx, orgID, workspaceID, keyID)
}

// APIKeys is APIKeys.List.
func (q Queries) APIKeys(ctx context.Context, orgID, workspaceID string, filter KeyFilter, page Page) ([]APIKeyRow, string, error) {
	return APIKeys{q.Pool}.List(ctx, orgID, workspaceID, filter, page)
}

// KeyLastUsed is APIKeys.LastUsed.
func (q Queries) KeyLastUsed(ctx context.Context, keyID string) (*time.Time, error) {
	return APIKeys{q.Pool}.LastUsed(ctx, keyID)
}

// Role is Roles.Get.
func (q Queries) Role(ctx context.Context, orgID, id string) (RoleRow, error) {
	return Roles{q.Pool}.Get(ctx, orgID, id)
}

// Roles is Roles.List.
func (q Queries) Roles(ctx context.Context, orgID string) ([]RoleRow, error) {
	return Roles{q.Pool}.List(ctx, orgID)
}

// WorkspaceCosts is Costs.OfWorkspace.
func (q Queries) WorkspaceCosts(ctx context.Context, orgID, workspaceID string, cq CostQuery) ([]CostRow, error) {
	return Costs{q.Pool}.OfWorkspace(ctx, orgID, workspaceID, cq)
}

// AccountCosts is Costs.OfAccount.
func (q Queries) AccountCosts(ctx context.Context, orgID, accountID string, cq CostQuery) ([]CostRow, error) {
	return Costs{q.Pool}.OfAccount(ctx, orgID, accountID, cq)
}

// OrganizationCosts is Costs.OfOrganization.
func (q Queries) OrganizationCosts(ctx context.Context, orgID string, cq CostQuery) ([]CostRow, error) {
	return Costs{q.Pool}.OfOrganization(ctx, orgID, cq)
}
