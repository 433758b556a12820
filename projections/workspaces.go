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

var workspaceColumns = []string{"id", "organization_id", "name", "description", "created_at", "updated_at", "version", "members_version"}

// applyWorkspaces keeps workspaces with their own version (name and description)
// and the version of their member set, as the write side counts them.
func applyWorkspaces(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.WorkspaceCreated:
		b.Insert("workspaces", workspaceColumns, e.WorkspaceID, e.OrganizationID, e.Name, e.Description, e.At, e.At,
			int64(r.Sequence), int64(r.Sequence))
	case domain.WorkspaceUpdated:
		b.Exec(`UPDATE workspaces SET name = $2, description = $3, updated_at = $4, version = $5 WHERE id = $1`,
			r.Aggregate, e.Name, e.Description, e.At, int64(r.Sequence))
	case domain.MemberAuthorized, domain.MemberRevoked:
		b.Defer("members-version:"+r.Aggregate, `UPDATE workspaces SET members_version = $2 WHERE id = $1`, r.Aggregate, int64(r.Sequence))
	}
}

// WorkspaceRow is a workspace as listed. Version is the workspace's own version
// (its entity tag), MembersVersion that of its member set.
type WorkspaceRow struct {
	ID             string
	OrganizationID string
	Name           string
	Description    string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Version        uint64
	MembersVersion uint64
}

func workspaceID(w WorkspaceRow) string { return w.ID }

// Workspaces answers questions about an organization's workspaces.
type Workspaces struct{ Pool *pgxpool.Pool }

const workspaceSelect = `SELECT id, organization_id, name, description, created_at, updated_at, version, members_version FROM workspaces `

func scanWorkspace(row pgx.Row) (WorkspaceRow, error) {
	var w WorkspaceRow
	var v, mv int64
	err := row.Scan(&w.ID, &w.OrganizationID, &w.Name, &w.Description, &w.CreatedAt, &w.UpdatedAt, &v, &mv)
	w.Version, w.MembersVersion = uint64(v), uint64(mv)
	return w, err
}

// Get returns one workspace of the organization, or domain.ErrWorkspaceNotFound.
func (q Workspaces) Get(ctx context.Context, orgID, id string) (WorkspaceRow, error) {
	w, err := scanWorkspace(q.Pool.QueryRow(ctx, workspaceSelect+`WHERE id = $1 AND organization_id = $2`, id, orgID))
	if errors.Is(err, pgx.ErrNoRows) {
		return WorkspaceRow{}, domain.ErrWorkspaceNotFound
	}
	if err != nil {
		return WorkspaceRow{}, fault.Unavailable(err)
	}
	return w, nil
}

// List returns the organization's workspaces in creation order, after a cursor.
func (q Workspaces) List(ctx context.Context, orgID string, page Page) ([]WorkspaceRow, string, error) {
	return queryPage(ctx, q.Pool, page, scanWorkspace, workspaceID,
		workspaceSelect+`WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3`, orgID, page.after(), page.Limit+1)
}

// authorizedOn is the condition "account is authorized on workspace" (two SQL
// expressions): directly, or through a role that includes it and carries the
// workspace.
func authorizedOn(workspace, account string) string {
	return `(EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = ` + workspace + ` AND m.account_id = ` + account + `)
		OR EXISTS (SELECT 1 FROM role_workspaces rw JOIN role_users ru ON ru.role_id = rw.role_id
			WHERE rw.workspace_id = ` + workspace + ` AND ru.account_id = ` + account + `))`
}

// ListForMember returns the organization's workspaces the account is authorized on
// (directly or through a role), in creation order, after a cursor.
func (q Workspaces) ListForMember(ctx context.Context, orgID, accountID string, page Page) ([]WorkspaceRow, string, error) {
	return queryPage(ctx, q.Pool, page, scanWorkspace, workspaceID, workspaceSelect+`WHERE organization_id = $1 AND id > $2
		AND `+authorizedOn("workspaces.id", "$4")+` ORDER BY id LIMIT $3`, orgID, page.after(), page.Limit+1, accountID)
}

// Membership is an account's direct membership of a workspace, with the log
// position of the event that authorized it (0: unknown, a row projected before
// positions were kept or by an older version).
type Membership struct {
	WorkspaceID string
	Position    uint64
}

// DirectMemberOf lists the organization's workspaces the account is a direct
// member of, in id order.
func (q Workspaces) DirectMemberOf(ctx context.Context, orgID, accountID string) ([]Membership, error) {
	return queryAll(ctx, q.Pool, pgx.RowToStructByPos[Membership], `SELECT w.id, COALESCE(m.position, 0) FROM workspace_members m
		JOIN workspaces w ON w.id = m.workspace_id WHERE w.organization_id = $1 AND m.account_id = $2 ORDER BY w.id`, orgID, accountID)
}

// MemberOf lists the ids of the organization's workspaces the account is authorized
// on, directly or through a role (all of them for the primary account).
func (q Workspaces) MemberOf(ctx context.Context, orgID, accountID string, primary bool) ([]string, error) {
	return queryAll(ctx, q.Pool, pgx.RowTo[string], `SELECT id FROM workspaces WHERE organization_id = $1
		AND ($3 OR `+authorizedOn("workspaces.id", "$2")+`) ORDER BY id`, orgID, accountID, primary)
}
