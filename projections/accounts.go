package projections

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

var accountColumns = []string{"id", "organization_id", "name", "is_primary", "created_at", "version", "created_by", "updated_by"}

// applyAccounts keeps accounts and their access keys (id and status, never a
// secret). The version of an account is the position of the last event that changed it, its
// access key or the roles that include it, as the write side counts it.
func applyAccounts(b *Batch, r eventstore.Record) {
	v, by := int64(r.Sequence), r.Metadata.ActorID
	switch e := r.Event.(type) {
	case domain.OrganizationCreated:
		b.Insert("accounts", accountColumns, e.PrimaryAccountID, e.OrganizationID, e.PrimaryAccountName, true, e.At, v, by, by)
	case domain.AccountCreated:
		b.Insert("accounts", accountColumns, e.AccountID, r.Aggregate, e.Name, false, e.At, v, by, by)
	case domain.AccountDisabled:
		b.Exec(`UPDATE accounts SET status = 'disabled', version = $2, updated_by = $3 WHERE id = $1`, e.AccountID, v, by)
	case domain.AccountEnabled:
		b.Exec(`UPDATE accounts SET status = 'enabled', version = $2, updated_by = $3 WHERE id = $1`, e.AccountID, v, by)
	case domain.AccessKeyCreated:
		b.Exec(`UPDATE accounts SET access_key_id = $2, access_key_status = 'enabled', access_key_created_at = $3, version = $4,
			access_key_created_by = $5, access_key_updated_by = $5 WHERE id = $1`, e.AccountID, e.AccessKeyID, e.At, v, by)
	case domain.AccessKeyDisabled:
		b.Exec(`UPDATE accounts SET access_key_status = 'disabled', version = $2, access_key_updated_by = $3 WHERE id = $1`, e.AccountID, v, by)
	case domain.AccessKeyEnabled:
		b.Exec(`UPDATE accounts SET access_key_status = 'enabled', version = $2, access_key_updated_by = $3 WHERE id = $1`, e.AccountID, v, by)
	case domain.AccessKeyDeleted:
		b.Exec(`UPDATE accounts SET access_key_id = NULL, access_key_status = NULL, access_key_created_at = NULL, access_key_created_by = NULL,
			access_key_updated_by = NULL, previous_access_key_id = NULL, previous_until = NULL, version = $2 WHERE id = $1`, e.AccountID, v)
	case domain.AccessKeyRotated: // the new key keeps the account's key status
		var prevID *string
		var prevUntil *time.Time
		if e.HasGrace() {
			prevID, prevUntil = &e.PreviousAccessKeyID, &e.PreviousUntil
		}
		b.Exec(`UPDATE accounts SET access_key_id = $2, access_key_created_at = $3, version = $4, access_key_created_by = $5,
			access_key_updated_by = $5, previous_access_key_id = $6, previous_until = $7 WHERE id = $1`,
			e.AccountID, e.AccessKeyID, e.At, v, by, prevID, prevUntil)
	case domain.RoleUserIncluded:
		b.Exec(`UPDATE accounts SET version = $2 WHERE id = $1`, e.AccountID, v)
	case domain.RoleUserExcluded:
		b.Exec(`UPDATE accounts SET version = $2 WHERE id = $1`, e.AccountID, v)
	case domain.PermissionGranted: // the effective permissions of the role's users
		b.Exec(`UPDATE accounts SET version = $2 WHERE id IN (SELECT account_id FROM role_users WHERE role_id = $1)`, e.RoleID, v)
	case domain.PermissionRevoked:
		b.Exec(`UPDATE accounts SET version = $2 WHERE id IN (SELECT account_id FROM role_users WHERE role_id = $1)`, e.RoleID, v)
	case domain.RoleDeleted: // runs before the roles view drops the role's users
		b.Exec(`UPDATE accounts SET version = $2 WHERE id IN (SELECT account_id FROM role_users WHERE role_id = $1)`, e.RoleID, v)
	}
}

// AccountRow is an account as listed, with its access key (never its secret) and
// its effective permissions.
type AccountRow struct {
	ID             string
	OrganizationID string
	Name           string
	Primary        bool
	Status         string
	AccessKey      *AccessKeyRow
	Permissions    []string
	CreatedAt      time.Time
	// Version is the account's own version (its entity tag).
	Version uint64
	// CreatedBy and UpdatedBy are the accounts that created it and last changed
	// its status.
	CreatedBy, UpdatedBy ActorRef
}

// ActorRef is an account that did something: its id (ce-actor) and name ("" for
// the system).
type ActorRef struct{ ID, Name string }

// AccessKeyRow is an access key without its secret.
type AccessKeyRow struct {
	ID                   string
	Status               string
	CreatedAt            time.Time
	CreatedBy, UpdatedBy ActorRef
	// PreviousID is the key a rotation replaced, working until PreviousUntil; nil
	// once its grace period has ended.
	PreviousID    *string
	PreviousUntil *time.Time
}

// Accounts answers questions about the accounts of an organization.
type Accounts struct{ Pool *pgxpool.Pool }

// allPermissions is what the primary account holds, sorted as the write side sorts.
var allPermissions = func() []string {
	var out []string
	for _, p := range domain.AllPermissions() {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}()

const accountSelect = `SELECT a.id, a.organization_id, a.name, a.is_primary, a.status, a.access_key_id, a.access_key_status,
	a.access_key_created_at, a.created_at, a.version,
	COALESCE((SELECT array_agg(DISTINCT p.permission ORDER BY p.permission) FROM role_users u
	          JOIN role_permissions p ON p.role_id = u.role_id WHERE u.account_id = a.id), '{}'),
	a.created_by, COALESCE(cb.name, ''), a.updated_by, COALESCE(ub.name, ''),
	COALESCE(a.access_key_created_by, ''), COALESCE(kcb.name, ''), COALESCE(a.access_key_updated_by, ''), COALESCE(kub.name, ''),
	CASE WHEN a.previous_until > now() THEN a.previous_access_key_id END, CASE WHEN a.previous_until > now() THEN a.previous_until END
	FROM accounts a LEFT JOIN accounts cb ON cb.id = a.created_by LEFT JOIN accounts ub ON ub.id = a.updated_by
	LEFT JOIN accounts kcb ON kcb.id = a.access_key_created_by LEFT JOIN accounts kub ON kub.id = a.access_key_updated_by `

func scanAccount(row pgx.Row) (AccountRow, error) {
	var a AccountRow
	var akID, akStatus *string
	var akAt *time.Time
	var v int64
	var akBy, akUpBy ActorRef
	var prevID *string
	var prevUntil *time.Time
	err := row.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.Primary, &a.Status, &akID, &akStatus, &akAt, &a.CreatedAt, &v, &a.Permissions,
		&a.CreatedBy.ID, &a.CreatedBy.Name, &a.UpdatedBy.ID, &a.UpdatedBy.Name, &akBy.ID, &akBy.Name, &akUpBy.ID, &akUpBy.Name, &prevID, &prevUntil)
	a.Version = uint64(v)
	if akID != nil {
		a.AccessKey = &AccessKeyRow{ID: *akID, Status: *akStatus, CreatedAt: *akAt, CreatedBy: akBy, UpdatedBy: akUpBy,
			PreviousID: prevID, PreviousUntil: prevUntil}
	}
	if a.Primary {
		a.Permissions = allPermissions
	}
	return a, err
}

// List returns the organization's accounts in creation order, after a cursor.
func (q Accounts) List(ctx context.Context, orgID string, page Page) ([]AccountRow, string, error) {
	return queryPage(ctx, q.Pool, page, scanAccount, func(a AccountRow) string { return a.ID },
		accountSelect+`WHERE a.organization_id = $1 AND a.id > $2 ORDER BY a.id LIMIT $3`, orgID, page.after(), page.Limit+1)
}

// Get returns one account of the organization, or domain.ErrAccountNotFound.
func (q Accounts) Get(ctx context.Context, orgID, id string) (AccountRow, error) {
	a, err := scanAccount(q.Pool.QueryRow(ctx, accountSelect+`WHERE a.organization_id = $1 AND a.id = $2`, orgID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return AccountRow{}, domain.ErrAccountNotFound
	}
	if err != nil {
		return AccountRow{}, fault.Unavailable(err)
	}
	return a, nil
}
