package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/usage"
)

// Handlers of the usage intake (the data plane).

// UsageIntake takes in the usage records gateways report.
type UsageIntake interface {
	Take(ctx context.Context, recs []domain.UsageRecord) ([]usage.Result, error)
}

// UsageRecord is one billable call as a gateway reports it.
type UsageRecord struct {
	RecordID     string           `json:"record_id"`
	CredentialID string           `json:"credential_id"`
	WorkspaceID  string           `json:"workspace_id"`
	Product      string           `json:"product" enum:"maas,search"`
	Resource     string           `json:"resource"`
	Units        map[string]int64 `json:"units,omitempty"`
	CostMicros   *int64           `json:"cost_micros"`
	Currency     string           `json:"currency"`
	At           time.Time        `json:"at"`
}

// UsageRequest is the body of POST /v1/usage.
type UsageRequest struct {
	Records []UsageRecord `json:"records"`
}

// UsageResult is what became of one record.
type UsageResult struct {
	RecordID string              `json:"record_id"`
	Status   string              `json:"status" enum:"accepted,duplicate,rejected"`
	Code     string              `json:"code,omitempty"`
	Fields   []domain.FieldError `json:"fields,omitempty"`
}

// UsageResponse lists the records in the order sent, with the counts.
type UsageResponse struct {
	Items      []UsageResult `json:"items"`
	Accepted   int           `json:"accepted"`
	Duplicates int           `json:"duplicates"`
	Rejected   int           `json:"rejected"`
}

// usageRoutes are the routes of the usage intake.
func (s *Server) usageRoutes() []route {
	return []route{
		{method: "POST", path: "/v1/usage", id: "reportUsage", summary: "Data plane: report up to 1,000 usage records (idempotent by record id)", gateway: true,
			bodyLimit: usageBodyLimit,
			request:   UsageRequest{}, status: 200, response: UsageResponse{}, handler: s.reportUsage},
	}
}

func (s *Server) reportUsage(c echo.Context) error {
	var req UsageRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if len(req.Records) == 0 || len(req.Records) > usage.MaxBatch {
		return invalidField("records", "out_of_range", "from 1 to 1000 records")
	}
	recs := make([]domain.UsageRecord, len(req.Records))
	for i, r := range req.Records {
		recs[i] = domain.UsageRecord{RecordID: r.RecordID, CredentialID: r.CredentialID, WorkspaceID: r.WorkspaceID,
			Product: domain.BusinessType(r.Product), Resource: r.Resource, Units: r.Units, CostMicros: r.CostMicros,
			Currency: r.Currency, At: r.At}.Normalized()
	}
	if !s.d.Verifier.Ready() { // whom a record bills is the index's to say
		return errIndexNotReady
	}
	results, err := s.d.Usage.Take(c.Request().Context(), recs)
	if err != nil {
		return err
	}
	out := UsageResponse{Items: make([]UsageResult, len(results))}
	for i, r := range results {
		out.Items[i] = UsageResult{RecordID: r.RecordID, Status: r.Status, Code: r.Code, Fields: r.Fields}
		switch r.Status {
		case usage.Accepted:
			out.Accepted++
		case usage.Duplicate:
			out.Duplicates++
		default:
			out.Rejected++
		}
	}
	return respond(c, http.StatusOK, out)
}

// usageBodyLimit takes 1,000 records as large as their checks allow (about 2 MB in
// JSON, twice that with every character of a resource escaped).
const usageBodyLimit = 4 << 20
