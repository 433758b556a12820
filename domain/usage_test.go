package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
)

func TestCheckUsage(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ok := domain.UsageRecord{RecordID: "gw-1:42", CredentialID: domain.NewAPIKeyID(), WorkspaceID: domain.NewWorkspaceID(),
		Product: domain.BusinessMaaS, Resource: "qwen-max", Units: map[string]int64{"input_tokens": 1200, "output_tokens": 300},
		CostMicros: cost(4200), Currency: "CNY", At: now.Add(-time.Hour)}
	if err := domain.CheckUsage("records[0]", ok, now, 35*24*time.Hour); err != nil {
		t.Fatalf("a valid record: %v", err)
	}
	for name, c := range map[string]struct {
		change func(*domain.UsageRecord)
		field  string
	}{
		"no record id":                   {func(r *domain.UsageRecord) { r.RecordID = "" }, "record_id"},
		"long record id":                 {func(r *domain.UsageRecord) { r.RecordID = strings.Repeat("r", 129) }, "record_id"},
		"a secret, not an id":            {func(r *domain.UsageRecord) { r.CredentialID = "klm_x" }, "credential_id"},
		"bad workspace":                  {func(r *domain.UsageRecord) { r.WorkspaceID = "prod" }, "workspace_id"},
		"bad product":                    {func(r *domain.UsageRecord) { r.Product = "gpu" }, "product"},
		"no resource":                    {func(r *domain.UsageRecord) { r.Resource = "" }, "resource"},
		"negative units":                 {func(r *domain.UsageRecord) { r.Units = map[string]int64{"calls": -1} }, "units.calls"},
		"huge units":                     {func(r *domain.UsageRecord) { r.Units = map[string]int64{"calls": domain.MaxUsageAmount + 1} }, "units.calls"},
		"no cost":                        {func(r *domain.UsageRecord) { r.CostMicros = nil }, "cost_micros"},
		"negative cost":                  {func(r *domain.UsageRecord) { r.CostMicros = cost(-1) }, "cost_micros"},
		"cost that could overflow a sum": {func(r *domain.UsageRecord) { r.CostMicros = cost(1 << 62) }, "cost_micros"},
		"lower-case currency":            {func(r *domain.UsageRecord) { r.Currency = "usd" }, "currency"},
		"no time":                        {func(r *domain.UsageRecord) { r.At = time.Time{} }, "at"},
		"in the future":                  {func(r *domain.UsageRecord) { r.At = now.Add(10 * time.Minute) }, "at"},
		"too old":                        {func(r *domain.UsageRecord) { r.At = now.Add(-36 * 24 * time.Hour) }, "at"},
	} {
		r := ok
		r.Units = map[string]int64{"input_tokens": 1}
		c.change(&r)
		err := domain.CheckUsage("records[0]", r, now, 35*24*time.Hour)
		ve, isVE := err.(*domain.ValidationError)
		if !isVE || ve.Fields[0].Field != "records[0]."+c.field {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func cost(micros int64) *int64 { return &micros }

// TestAUsageRecordIsCountedUnderOneForm: the resource is trimmed and in NFC and the
// product in lower case, so that one model is one line of the costs.
func TestAUsageRecordIsCountedUnderOneForm(t *testing.T) {
	r := domain.UsageRecord{Product: "MaaS", Resource: " qwe\u0301n-max\t"}.Normalized()
	if r.Product != domain.BusinessMaaS || r.Resource != "qw\u00e9n-max" {
		t.Fatalf("normalized: %q %q", r.Product, r.Resource)
	}
	if r := (domain.UsageRecord{Product: "gpu"}).Normalized(); r.Product != "gpu" {
		t.Fatalf("a product that does not parse is kept, to be refused as sent: %q", r.Product)
	}
}
