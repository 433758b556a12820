package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

var memberColumns = []string{"workspace_id", "account_id", "authorized_at"}

func applyMembers(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.MemberAuthorized:
		b.Insert("workspace_members", memberColumns, r.Aggregate, e.AccountID, e.At)
	case domain.MemberRevoked:
		b.Exec(`DELETE FROM workspace_members WHERE workspace_id = $1 AND account_id = $2`, r.Aggregate, e.AccountID)
	}
}

// MemberRow is an account authorized on a workspace.
type MemberRow struct {
	AccountID    string
	Name         string
	Primary      bool
	AuthorizedAt time.Time
}

// Members answers "who is authorized on this workspace".
type Members struct{ Pool *pgxpool.Pool }

// List returns the members of a workspace of the organization in account order;
// domain.ErrWorkspaceNotFound when the workspace is not the organization's.
func (q Members) List(ctx context.Context, orgID, workspaceID string) ([]MemberRow, error) {
	if _, err := (Workspaces{q.Pool}).Get(ctx, orgID, workspaceID); err != nil {
		return nil, err
	}
	rows, err := q.Pool.Query(ctx, `SELECT m.account_id, a.name, a.is_primary, m.authorized_at
		FROM workspace_members m JOIN accounts a ON a.id = m.account_id
		WHERE m.workspace_id = $1 ORDER BY m.account_id`, workspaceID)
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	defer rows.Close()
	out := []MemberRow{}
	for rows.Next() {
		var m MemberRow
		if err := rows.Scan(&m.AccountID, &m.Name, &m.Primary, &m.AuthorizedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, fault.Unavailable(rows.Err())
}
