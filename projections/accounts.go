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

var accountColumns = []string{"id", "organization_id", "name", "is_primary", "created_at"}

// applyAccounts keeps accounts and their access keys (id and status, never a secret).
func applyAccounts(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.OrganizationCreated:
		b.Insert("accounts", accountColumns, e.PrimaryAccountID, e.OrganizationID, e.PrimaryAccountName, true, e.At)
	case domain.AccountCreated:
		b.Insert("accounts", accountColumns, e.AccountID, r.Aggregate, e.Name, false, e.At)
	case domain.AccountDisabled:
		b.Exec(`UPDATE accounts SET status = 'disabled' WHERE id = $1`, e.AccountID)
	case domain.AccountEnabled:
		b.Exec(`UPDATE accounts SET status = 'enabled' WHERE id = $1`, e.AccountID)
	case domain.AccessKeyCreated:
		b.Exec(`UPDATE accounts SET access_key_id = $2, access_key_status = 'enabled', access_key_created_at = $3 WHERE id = $1`,
			e.AccountID, e.AccessKeyID, e.At)
	case domain.AccessKeyDisabled:
		b.Exec(`UPDATE accounts SET access_key_status = 'disabled' WHERE id = $1`, e.AccountID)
	case domain.AccessKeyEnabled:
		b.Exec(`UPDATE accounts SET access_key_status = 'enabled' WHERE id = $1`, e.AccountID)
	case domain.AccessKeyDeleted:
		b.Exec(`UPDATE accounts SET access_key_id = NULL, access_key_status = NULL, access_key_created_at = NULL WHERE id = $1`, e.AccountID)
	}
}

// AccountRow is an account as listed, with its access key (never its secret) and
// its effective permissions.
type AccountRow struct {
	ID             string        `json:"id"`
	OrganizationID string        `json:"organization_id"`
	Name           string        `json:"name"`
	Primary        bool          `json:"primary"`
	Status         string        `json:"status"`
	AccessKey      *AccessKeyRow `json:"access_key"`
	Permissions    []string      `json:"permissions"`
	CreatedAt      time.Time     `json:"created_at"`
}

// AccessKeyRow is an access key without its secret.
type AccessKeyRow struct {
	ID        string    `json:"access_key_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

// Accounts answers questions about the accounts of an organization.
type Accounts struct{ Pool *pgxpool.Pool }

// allPermissions is what the primary account holds.
var allPermissions = func() []string {
	var out []string
	for _, m := range domain.GrantableModules() {
		for _, a := range domain.ActionsOf(m) {
			out = append(out, domain.Permission{Module: m, Action: a}.String())
		}
	}
	return append(out, domain.PermOrganizationAdmin.String())
}()

const accountSelect = `SELECT a.id, a.organization_id, a.name, a.is_primary, a.status, a.access_key_id, a.access_key_status,
	a.access_key_created_at, a.created_at,
	COALESCE((SELECT array_agg(DISTINCT p.permission ORDER BY p.permission) FROM role_users u
	          JOIN role_permissions p ON p.role_id = u.role_id WHERE u.account_id = a.id), '{}')
	FROM accounts a `

func scanAccount(row pgx.Row) (AccountRow, error) {
	var a AccountRow
	var akID, akStatus *string
	var akAt *time.Time
	err := row.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.Primary, &a.Status, &akID, &akStatus, &akAt, &a.CreatedAt, &a.Permissions)
	if akID != nil {
		a.AccessKey = &AccessKeyRow{ID: *akID, Status: *akStatus, CreatedAt: *akAt}
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
