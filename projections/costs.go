package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
)

// CostsProjector names the projector of CostViews (its checkpoint and lock).
const CostsProjector = "costs"

// CostViews is the view of the usage stream: costs by hour, counted once per record.
func CostViews() []View { return []View{ViewFunc(applyCosts)} }

// applyCosts adds a usage record to its hour and its day, once: the record is added
// only when its id was not counted before, in the same statement, so a redelivery, a
// resend days later or a crash between the commit and the acknowledgement changes no
// total.
func applyCosts(b *Batch, r eventstore.Record) {
	u, ok := r.Event.(domain.UsageRecorded)
	if !ok {
		return
	}
	var account *string
	if u.AccountID != "" {
		account = &u.AccountID
	}
	b.Exec(`WITH counted AS (
			INSERT INTO usage_counted (organization_id, record_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1),
		hourly AS (
			INSERT INTO costs_hourly (organization_id, workspace_id, hour, credential_id, billing_kind, account_id, resource, currency, cost_micros, records)
			SELECT $1, $3, date_trunc('hour', $4::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', $5, $6, $7, $8, $9, $10, 1 FROM counted
			ON CONFLICT (workspace_id, hour, credential_id, resource, currency) DO UPDATE
			SET cost_micros = costs_hourly.cost_micros + EXCLUDED.cost_micros, records = costs_hourly.records + 1)
		INSERT INTO costs_daily (organization_id, workspace_id, day, credential_id, billing_kind, account_id, resource, currency, cost_micros, records)
		SELECT $1, $3, date_trunc('day', $4::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', $5, $6, $7, $8, $9, $10, 1 FROM counted
		ON CONFLICT (workspace_id, day, credential_id, resource, currency) DO UPDATE
		SET cost_micros = costs_daily.cost_micros + EXCLUDED.cost_micros, records = costs_daily.records + 1`,
		u.OrganizationID, u.RecordID, u.WorkspaceID, u.At, u.CredentialID, u.BillingKind, account, u.Resource, u.Currency, u.CostMicros)
}

// CostQuery asks for costs over [From, To), by Granularity ("hour", "day", "month"),
// optionally grouped by one dimension ("key", "resource", "workspace", "account") and
// narrowed to one currency. Periods are in UTC.
type CostQuery struct {
	From, To    time.Time
	Granularity string
	GroupBy     string
	Currency    string
	// Workspaces, when not nil, narrows the costs to the calls made on these
	// workspaces (those a sub-account is authorized on); empty, to none.
	Workspaces []string
}

// CostRow is one period (and group) of costs in one currency.
type CostRow struct {
	PeriodStart time.Time
	Group       string // "" when not grouped
	Currency    string
	// CostMicros is the exact sum, in decimal digits: sums exceed an int64 (and a
	// float64 keeps integers exact only to 2^53).
	CostMicros string
	Records    int64
}

// Costs answers questions about costs.
type Costs struct{ Pool *pgxpool.Pool }

// granularities: where each period's costs are kept and how a row maps to its period.
var granularities = map[string]struct{ table, column, period string }{
	"hour":  {"costs_hourly", "hour", "hour"},
	"day":   {"costs_daily", "day", "day"},
	"month": {"costs_daily", "day", "date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"},
}

var groupColumns = map[string]string{"": "''", "key": "credential_id", "resource": "resource", "workspace": "workspace_id", "account": "COALESCE(account_id, '')"}

// Of sums the costs of the rows scope selects (a workspace, an account or the whole
// organization), in one statement, so one snapshot answers.
func (q Costs) of(ctx context.Context, scope string, args []any, cq CostQuery) ([]CostRow, error) {
	group, ok := groupColumns[cq.GroupBy]
	if !ok {
		return nil, fmt.Errorf("costs: unknown grouping %q", cq.GroupBy)
	}
	// Hours come from costs_hourly; days and months from costs_daily (a day's rows
	// are already its period: no function per row).
	g, ok := granularities[cq.Granularity]
	if !ok {
		return nil, fmt.Errorf("costs: unknown granularity %q", cq.Granularity)
	}
	n := len(args)
	sql := fmt.Sprintf(`SELECT %s AS period, %s AS grp, currency, SUM(cost_micros)::text, SUM(records)::bigint
		FROM %s WHERE %s AND %s >= $%d AND %s < $%d AND ($%d = '' OR currency = $%d)
			AND ($%d::text[] IS NULL OR workspace_id = ANY($%d))
		GROUP BY period, grp, currency ORDER BY period, grp, currency`, g.period, group, g.table, scope, g.column, n+1, g.column, n+2, n+3, n+3, n+4, n+4)
	return queryAll(ctx, q.Pool, func(row pgx.CollectableRow) (CostRow, error) {
		var c CostRow
		err := row.Scan(&c.PeriodStart, &c.Group, &c.Currency, &c.CostMicros, &c.Records)
		c.PeriodStart = c.PeriodStart.UTC()
		return c, err
	}, sql, append(args, cq.From, cq.To, cq.Currency, cq.Workspaces)...)
}

// OfWorkspace sums a workspace's costs: its API keys' calls and its members'
// access keys' calls made on it.
func (q Costs) OfWorkspace(ctx context.Context, orgID, workspaceID string, cq CostQuery) ([]CostRow, error) {
	return q.of(ctx, "organization_id = $1 AND workspace_id = $2", []any{orgID, workspaceID}, cq)
}

// OfAccount sums an account's costs: the calls made with its access key.
func (q Costs) OfAccount(ctx context.Context, orgID, accountID string, cq CostQuery) ([]CostRow, error) {
	return q.of(ctx, "organization_id = $1 AND account_id = $2", []any{orgID, accountID}, cq)
}

// OfOrganization sums the organization's costs.
func (q Costs) OfOrganization(ctx context.Context, orgID string, cq CostQuery) ([]CostRow, error) {
	return q.of(ctx, "organization_id = $1", []any{orgID}, cq)
}
