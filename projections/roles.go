package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

func applyRoles(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.RoleCreated:
		b.Insert("roles", []string{"id", "organization_id", "name", "created_at"}, e.RoleID, r.Aggregate, e.Name, e.At)
	case domain.RoleRenamed:
		b.Exec(`UPDATE roles SET name = $2 WHERE id = $1`, e.RoleID, e.Name)
	case domain.RoleDeleted:
		b.Exec(`DELETE FROM role_permissions WHERE role_id = $1`, e.RoleID)
		b.Exec(`DELETE FROM role_users WHERE role_id = $1`, e.RoleID)
		b.Exec(`DELETE FROM roles WHERE id = $1`, e.RoleID)
	case domain.PermissionGranted:
		b.Insert("role_permissions", []string{"role_id", "permission"}, e.RoleID, e.Permission)
	case domain.PermissionRevoked:
		b.Exec(`DELETE FROM role_permissions WHERE role_id = $1 AND permission = $2`, e.RoleID, e.Permission)
	case domain.RoleUserIncluded:
		b.Insert("role_users", []string{"role_id", "account_id"}, e.RoleID, e.AccountID)
	case domain.RoleUserExcluded:
		b.Exec(`DELETE FROM role_users WHERE role_id = $1 AND account_id = $2`, e.RoleID, e.AccountID)
	}
}

// RoleRow is a role as listed.
type RoleRow struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Users       []string  `json:"users"`
	CreatedAt   time.Time `json:"created_at"`
}

// Roles answers questions about an organization's roles.
type Roles struct{ Pool *pgxpool.Pool }

// List returns the organization's roles by id.
func (q Roles) List(ctx context.Context, orgID string) ([]RoleRow, error) {
	rows, err := q.Pool.Query(ctx, `SELECT r.id, r.name, r.created_at,
		COALESCE((SELECT array_agg(permission ORDER BY permission) FROM role_permissions WHERE role_id = r.id), '{}'),
		COALESCE((SELECT array_agg(account_id ORDER BY account_id) FROM role_users WHERE role_id = r.id), '{}')
		FROM roles r WHERE r.organization_id = $1 ORDER BY r.id`, orgID)
	if err != nil {
		return nil, fault.Unavailable(err)
	}
	defer rows.Close()
	out := []RoleRow{}
	for rows.Next() {
		var r RoleRow
		if err := rows.Scan(&r.ID, &r.Name, &r.CreatedAt, &r.Permissions, &r.Users); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, fault.Unavailable(rows.Err())
}
