package projections

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

// applyRoles keeps roles with their own version, as the write side counts it.
func applyRoles(b *Batch, r eventstore.Record) {
	by := r.Metadata.ActorID
	touch := func(roleID string, at time.Time) {
		b.Exec(`UPDATE roles SET version = $2, updated_at = $3, updated_by = $4 WHERE id = $1`, roleID, int64(r.Sequence), at, by)
	}
	switch e := r.Event.(type) {
	case domain.RoleCreated:
		b.Insert("roles", []string{"id", "organization_id", "name", "created_at", "updated_at", "version", "created_by", "updated_by"},
			e.RoleID, r.Aggregate, e.Name, e.At, e.At, int64(r.Sequence), by, by)
	case domain.RoleRenamed:
		b.Exec(`UPDATE roles SET name = $2 WHERE id = $1`, e.RoleID, e.Name)
		touch(e.RoleID, e.At)
	case domain.RoleDeleted:
		b.Exec(`DELETE FROM role_permissions WHERE role_id = $1`, e.RoleID)
		b.Exec(`DELETE FROM role_users WHERE role_id = $1`, e.RoleID)
		b.Exec(`DELETE FROM role_workspaces WHERE role_id = $1`, e.RoleID)
		b.Exec(`DELETE FROM roles WHERE id = $1`, e.RoleID)
	case domain.PermissionGranted:
		b.Insert("role_permissions", []string{"role_id", "permission"}, e.RoleID, e.Permission)
		touch(e.RoleID, e.At)
	case domain.PermissionRevoked:
		b.Exec(`DELETE FROM role_permissions WHERE role_id = $1 AND permission = $2`, e.RoleID, e.Permission)
		touch(e.RoleID, e.At)
	case domain.RoleUserIncluded:
		b.Insert("role_users", []string{"role_id", "account_id"}, e.RoleID, e.AccountID)
		touch(e.RoleID, e.At)
	case domain.RoleUserExcluded:
		b.Exec(`DELETE FROM role_users WHERE role_id = $1 AND account_id = $2`, e.RoleID, e.AccountID)
		touch(e.RoleID, e.At)
	case domain.RoleWorkspaceAdded:
		b.Insert("role_workspaces", []string{"role_id", "workspace_id"}, e.RoleID, e.WorkspaceID)
		touch(e.RoleID, e.At)
	case domain.RoleWorkspaceRemoved:
		b.Exec(`DELETE FROM role_workspaces WHERE role_id = $1 AND workspace_id = $2`, e.RoleID, e.WorkspaceID)
		touch(e.RoleID, e.At)
	}
}

// RoleRow is a role as listed.
type RoleRow struct {
	ID          string
	Name        string
	Permissions []string
	Users       []string
	Workspaces  []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Version is the role's own version (its entity tag).
	Version uint64
	// CreatedBy and UpdatedBy are the accounts that created and last changed it.
	CreatedBy, UpdatedBy ActorRef
}

// Roles answers questions about an organization's roles.
type Roles struct{ Pool *pgxpool.Pool }

const roleSelect = `SELECT r.id, r.name, r.created_at, COALESCE(r.updated_at, r.created_at), r.version,
	COALESCE((SELECT array_agg(permission ORDER BY permission) FROM role_permissions WHERE role_id = r.id), '{}'),
	COALESCE((SELECT array_agg(account_id ORDER BY account_id) FROM role_users WHERE role_id = r.id), '{}'),
	COALESCE((SELECT array_agg(workspace_id ORDER BY workspace_id) FROM role_workspaces WHERE role_id = r.id), '{}'),
	r.created_by, COALESCE(cb.name, ''), r.updated_by, COALESCE(ub.name, '')
	FROM roles r LEFT JOIN accounts cb ON cb.id = r.created_by LEFT JOIN accounts ub ON ub.id = r.updated_by `

func scanRole(row pgx.Row) (RoleRow, error) {
	var r RoleRow
	var v int64
	err := row.Scan(&r.ID, &r.Name, &r.CreatedAt, &r.UpdatedAt, &v, &r.Permissions, &r.Users, &r.Workspaces, &r.CreatedBy.ID, &r.CreatedBy.Name,
		&r.UpdatedBy.ID, &r.UpdatedBy.Name)
	r.Version = uint64(v)
	return r, err
}

// List returns the organization's roles by id.
func (q Roles) List(ctx context.Context, orgID string) ([]RoleRow, error) {
	return queryAll(ctx, q.Pool, func(row pgx.CollectableRow) (RoleRow, error) { return scanRole(row) },
		roleSelect+`WHERE r.organization_id = $1 ORDER BY r.id`, orgID)
}

// Get returns one role of the organization, or domain.ErrRoleNotFound.
func (q Roles) Get(ctx context.Context, orgID, id string) (RoleRow, error) {
	r, err := scanRole(q.Pool.QueryRow(ctx, roleSelect+`WHERE r.organization_id = $1 AND r.id = $2`, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return RoleRow{}, domain.ErrRoleNotFound
	}
	return r, fault.Unavailable(err)
}
