package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

var memberColumns = []string{"workspace_id", "account_id", "authorized_at", "position"}

func applyMembers(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.MemberAuthorized:
		b.Insert("workspace_members", memberColumns, r.Aggregate, e.AccountID, e.At, int64(r.Sequence))
	case domain.MemberRevoked:
		b.Exec(`DELETE FROM workspace_members WHERE workspace_id = $1 AND account_id = $2`, r.Aggregate, e.AccountID)
	}
}

// MemberRow is an account authorized on a workspace: directly (since
// AuthorizedAt), through roles, or both.
type MemberRow struct {
	AccountID string
	Name      string
	Primary   bool
	// AuthorizedAt is nil when the account is authorized only through roles.
	AuthorizedAt *time.Time
	// RoleIDs and RoleNames are the roles that authorize it there, by id.
	RoleIDs, RoleNames []string
}

// CandidateRow is a sub-account of the organization not authorized on a workspace.
type CandidateRow struct {
	AccountID string
	Name      string
}

// Members answers "who is authorized on this workspace".
type Members struct{ Pool *pgxpool.Pool }

// List returns the members of a workspace of the organization in account order;
// domain.ErrWorkspaceNotFound when the workspace is not the organization's.
func (q Members) List(ctx context.Context, orgID, workspaceID string) ([]MemberRow, error) {
	if _, err := (Workspaces{q.Pool}).Get(ctx, orgID, workspaceID); err != nil {
		return nil, err
	}
	return queryAll(ctx, q.Pool, func(row pgx.CollectableRow) (MemberRow, error) {
		var m MemberRow
		err := row.Scan(&m.AccountID, &m.Name, &m.Primary, &m.AuthorizedAt, &m.RoleIDs, &m.RoleNames)
		return m, err
	}, `WITH direct AS (SELECT account_id, authorized_at FROM workspace_members WHERE workspace_id = $1),
		via AS (SELECT ru.account_id, array_agg(r.id ORDER BY r.id) AS ids, array_agg(r.name ORDER BY r.id) AS names
			FROM role_workspaces rw JOIN role_users ru ON ru.role_id = rw.role_id JOIN roles r ON r.id = rw.role_id
			WHERE rw.workspace_id = $1 GROUP BY ru.account_id)
		SELECT a.id, a.name, a.is_primary, d.authorized_at, COALESCE(v.ids, '{}'), COALESCE(v.names, '{}')
		FROM accounts a LEFT JOIN direct d ON d.account_id = a.id LEFT JOIN via v ON v.account_id = a.id
		WHERE a.organization_id = $2 AND (d.account_id IS NOT NULL OR v.account_id IS NOT NULL) ORDER BY a.id`, workspaceID, orgID)
}

// Candidates lists the organization's sub-accounts not authorized on the workspace
// (neither directly nor through a role), in account order: the "Unauthorized
// Accounts" beside the members.
func (q Members) Candidates(ctx context.Context, orgID, workspaceID string) ([]CandidateRow, error) {
	return queryAll(ctx, q.Pool, func(row pgx.CollectableRow) (CandidateRow, error) {
		var c CandidateRow
		err := row.Scan(&c.AccountID, &c.Name)
		return c, err
	}, `SELECT a.id, a.name FROM accounts a WHERE a.organization_id = $1 AND NOT a.is_primary
		AND NOT `+authorizedOn("$2", "a.id")+` ORDER BY a.id`, orgID, workspaceID)
}
