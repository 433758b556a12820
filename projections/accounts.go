package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/fault"
)

var accountColumns = []string{"id", "organization_id", "name", "is_primary", "access_key_id", "created_at"}

func applyAccounts(b *Batch, r eventstore.Record) {
	switch e := r.Event.(type) {
	case domain.OrganizationCreated:
		b.Insert("accounts", accountColumns, e.PrimaryAccountID, e.OrganizationID, e.PrimaryAccountName, true, nil, e.At)
	case domain.AccountCreated:
		b.Insert("accounts", accountColumns, e.AccountID, r.Aggregate, e.Name, false, nil, e.At)
	case domain.AccessKeyCreated:
		b.Exec(`UPDATE accounts SET access_key_id = $2 WHERE id = $1`, e.AccountID, e.AccessKeyID)
	}
}

// AccountRow is an account as listed.
type AccountRow struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	Primary        bool      `json:"primary"`
	AccessKeyID    *string   `json:"access_key_id"`
	CreatedAt      time.Time `json:"created_at"`
}

// Accounts answers questions about the accounts of an organization.
type Accounts struct{ Pool *pgxpool.Pool }

// List returns the organization's accounts in creation order, after a cursor.
func (q Accounts) List(ctx context.Context, orgID string, page Page) ([]AccountRow, string, error) {
	rows, err := q.Pool.Query(ctx, `SELECT id, organization_id, name, is_primary, access_key_id, created_at
		FROM accounts WHERE organization_id = $1 AND id > $2 ORDER BY id LIMIT $3`, orgID, page.after(), page.Limit+1)
	if err != nil {
		return nil, "", fault.Unavailable(err)
	}
	defer rows.Close()
	var out []AccountRow
	for rows.Next() {
		var a AccountRow
		if err := rows.Scan(&a.ID, &a.OrganizationID, &a.Name, &a.Primary, &a.AccessKeyID, &a.CreatedAt); err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fault.Unavailable(err)
	}
	return pageOf(out, page, func(a AccountRow) string { return a.ID })
}
