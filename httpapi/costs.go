package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/commands"
	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/projections"
)

// Handlers of costs: sums of the usage records, exactly, per currency.

// Cost is one period (and group) of costs in one currency; money is an integer of
// micro-units, in decimal digits: a sum may exceed what an int64 holds, and a
// JSON number read as a float64 loses integers beyond 2^53.
type Cost struct {
	PeriodStart time.Time `json:"period_start"`
	Group       string    `json:"group,omitempty"`
	Currency    string    `json:"currency"`
	CostMicros  string    `json:"cost_micros" pattern:"^[0-9]+$"`
	Records     int64     `json:"records"`
}

// CostList is the costs of a scope over a time range.
type CostList struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	Granularity string    `json:"granularity" enum:"hour,day,month"`
	GroupBy     string    `json:"group_by,omitempty" enum:"key,resource,workspace,account"`
	Items       []Cost    `json:"items"`
}

var costParams = []param{
	{name: "from", description: "start of the range, RFC 3339 (default: 30 days before to); rounded down to the hour (granularity hour) or the UTC day (day, month)"},
	{name: "to", description: "end of the range, excluded, RFC 3339 (default: now); rounded up like from. The answer's from and to are the range covered"},
	{name: "granularity", description: "period of each row", enum: []string{"hour", "day", "month"}},
	{name: "group_by", description: "one dimension to group by", enum: []string{"key", "resource", "workspace", "account"}},
	{name: "currency", description: "only this ISO 4217 currency"},
}

// costRoutes are the routes of costs.
func (s *Server) costRoutes() []route {
	return []route{
		{method: "GET", path: "/v1/workspaces/:ws/costs", id: "workspaceCosts", summary: "A workspace's costs (cost:read and membership)", auth: true,
			status: 200, response: CostList{}, csv: true, query: costParams, handler: s.workspaceCosts},
		{method: "GET", path: "/v1/accounts/:id/costs", id: "accountCosts", summary: "An account's costs: its access key's calls (cost:read; another account's also account:read)", auth: true,
			status: 200, response: CostList{}, csv: true, query: costParams, handler: s.accountCosts},
		{method: "GET", path: "/v1/costs", id: "organizationCosts", summary: "The organization's costs (cost:read; a sub-account's cover the workspaces it is authorized on)", auth: true,
			status: 200, response: CostList{}, csv: true, query: costParams, handler: s.organizationCosts},
	}
}

// costQuery reads the range, the granularity, the grouping and the currency.
func costQuery(c echo.Context, now time.Time) (projections.CostQuery, error) {
	var verr domain.ValidationError
	q := projections.CostQuery{To: now.UTC(), Granularity: "day", GroupBy: c.QueryParam("group_by"), Currency: c.QueryParam("currency")}
	timeParam(c, "to", &q.To, &verr)
	timeParam(c, "from", &q.From, &verr)
	if q.From.IsZero() {
		q.From = q.To.AddDate(0, 0, -30)
	}
	if !q.From.Before(q.To) {
		verr.Add("from", "invalid_range", "from must be before to")
	}
	if g := c.QueryParam("granularity"); g != "" {
		q.Granularity = g
	}
	switch q.Granularity {
	case "hour", "day", "month":
	default:
		verr.Add("granularity", "invalid_granularity", `"hour", "day" or "month"`)
	}
	switch q.GroupBy {
	case "", "key", "resource", "workspace", "account":
	default:
		verr.Add("group_by", "invalid_group_by", `"key", "resource", "workspace" or "account"`)
	}
	if q.Currency != "" && !domain.ValidCurrency(q.Currency) {
		verr.Add("currency", "invalid_currency", "an ISO 4217 code such as USD")
	}
	// Costs are kept by hour and by UTC day: the range covers whole ones.
	unit := time.Hour
	if q.Granularity != "hour" {
		unit = 24 * time.Hour
	}
	q.From = q.From.Truncate(unit)
	if t := q.To.Truncate(unit); t.Before(q.To) {
		q.To = t.Add(unit)
	}
	return q, verr.Err()
}

// costQuery is the request's cost query, narrowed for a sub-account to the
// workspaces it is authorized on: it never sees the costs of another (an account's
// costs included).
func (s *Server) costQuery(c echo.Context) (projections.CostQuery, error) {
	q, err := costQuery(c, time.Now())
	if err != nil || caller(c).Primary {
		return q, err
	}
	ws, err := s.authorizedWorkspaces(c)
	q.Workspaces = nonNil(ws)
	return q, err
}

// answerCosts writes the costs as JSON, or as CSV when the client accepts text/csv.
func answerCosts(c echo.Context, q projections.CostQuery, rows []projections.CostRow) error {
	if accepts(c, "text/csv") {
		c.Response().Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		c.Response().WriteHeader(http.StatusOK)
		w := csv.NewWriter(c.Response())
		_ = w.Write([]string{"period_start", "group", "currency", "cost_micros", "records"})
		for _, r := range rows {
			_ = w.Write([]string{r.PeriodStart.Format(time.RFC3339), csvCell(r.Group), r.Currency, r.CostMicros, strconv.FormatInt(r.Records, 10)})
		}
		w.Flush()
		return w.Error()
	}
	out := CostList{From: q.From, To: q.To, Granularity: q.Granularity, GroupBy: q.GroupBy, Items: make([]Cost, len(rows))}
	for i, r := range rows {
		out.Items[i] = Cost{PeriodStart: r.PeriodStart, Group: r.Group, Currency: r.Currency, CostMicros: r.CostMicros, Records: r.Records}
	}
	return respond(c, http.StatusOK, out)
}

func (s *Server) workspaceCosts(c echo.Context) error {
	ws, err := pathID(c, "ws", domain.IsWorkspaceID, domain.ErrWorkspaceNotFound)
	if err != nil {
		return err
	}
	cl, ctx := caller(c), c.Request().Context()
	if cl.Primary {
		if _, err := s.d.Views.Workspace(ctx, cl.OrganizationID, ws); err != nil {
			return err
		}
	} else if err := s.d.App.AuthorizeWorkspace(ctx, cl, ws, commands.PermCostRead); err != nil {
		return err
	}
	q, err := costQuery(c, time.Now())
	if err != nil {
		return err
	}
	rows, err := s.d.Views.WorkspaceCosts(ctx, cl.OrganizationID, ws, q)
	if err != nil {
		return err
	}
	return answerCosts(c, q, rows)
}

func (s *Server) accountCosts(c echo.Context) error {
	id, err := accountID(c)
	if err != nil {
		return err
	}
	cl, ctx := caller(c), c.Request().Context()
	if err := cl.Can(commands.PermCostRead); err != nil {
		return err
	}
	if err := cl.ReadsAccount(id); err != nil {
		return err
	}
	if _, err := s.d.Views.Account(ctx, cl.OrganizationID, id); err != nil {
		return err
	}
	q, err := s.costQuery(c)
	if err != nil {
		return err
	}
	rows, err := s.d.Views.AccountCosts(ctx, cl.OrganizationID, id, q)
	if err != nil {
		return err
	}
	return answerCosts(c, q, rows)
}

func (s *Server) organizationCosts(c echo.Context) error {
	cl, ctx := caller(c), c.Request().Context()
	if err := cl.Can(commands.PermCostRead); err != nil {
		return err
	}
	q, err := s.costQuery(c)
	if err != nil {
		return err
	}
	rows, err := s.d.Views.OrganizationCosts(ctx, cl.OrganizationID, q)
	if err != nil {
		return err
	}
	return answerCosts(c, q, rows)
}
