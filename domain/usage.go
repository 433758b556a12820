package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits of a usage record. Amounts are bounded so that sums of many records in an
// int64 never overflow (9.2e18 holds 9,000 records at the bound, billions at any
// real price).
const (
	MaxUsageRecordIDLen = 128
	MaxUsageResourceLen = 128
	MaxUsageUnits       = 16
	MaxUsageAmount      = 1_000_000_000_000_000 // micro-units of a currency, or units
	// UsageFutureSkew is how far in the future a call's time may be (gateway clocks).
	UsageFutureSkew = 5 * time.Minute
)

// UsageRecord is one billable call as a gateway reports it.
type UsageRecord struct {
	RecordID     string
	CredentialID string // an API key id (key_…) or an access key id (AK…)
	WorkspaceID  string
	Product      BusinessType
	Resource     string // a model or a search application
	Units        map[string]int64
	CostMicros   *int64 // required: a free call says 0
	Currency     string // ISO 4217, three capital letters
	At           time.Time
}

// Normalized is the record in the one form it is counted under: its resource
// trimmed of surrounding white space and in NFC (one model, one line of the
// costs), its product in lower case (a product that does not parse is kept as sent,
// to be refused as such).
func (r UsageRecord) Normalized() UsageRecord {
	r.Resource = strings.TrimSpace(norm.NFC.String(r.Resource))
	if p, err := ParseBusinessType(string(r.Product)); err == nil {
		r.Product = p
	}
	return r
}

// UsageRecorded is a usage record as the usage stream keeps it: the gateway's
// record, and whom it is billed to as the log stood at the call's time. Its wire
// names are the stream's contract with billing: never rename one.
type UsageRecorded struct {
	RecordID       string           `json:"record_id"`
	OrganizationID string           `json:"organization_id"`
	WorkspaceID    string           `json:"workspace_id"`
	CredentialID   string           `json:"credential_id"`
	Product        BusinessType     `json:"product"`
	Resource       string           `json:"resource"`
	Units          map[string]int64 `json:"units"`
	CostMicros     int64            `json:"cost_micros"`
	Currency       string           `json:"currency"`
	At             time.Time        `json:"at"`
	// BillingKind is "workspace" (an API key's call) or "account" (an access key's);
	// BillingID the workspace or the account. AccountID is the account of an access
	// key, shown per workspace within that account.
	BillingKind string `json:"billing_kind"`
	BillingID   string `json:"billing_id"`
	AccountID   string `json:"account_id,omitempty"`
}

// EventTypeUsageRecorded is the ce-type of a usage record on its stream.
const EventTypeUsageRecorded = "keyledger.usage.recorded.v1"

// EventType implements Event: a usage record is a fact of the usage stream, never of
// an aggregate.
func (UsageRecorded) EventType() string { return EventTypeUsageRecorded }

// CheckUsage validates a record against its limits and against the window of
// times accepted: from now-maxAge to now+UsageFutureSkew. Fields are named as on the
// wire, under prefix (records[3]).
func CheckUsage(prefix string, r UsageRecord, now time.Time, maxAge time.Duration) error {
	var verr ValidationError
	f := func(name string) string { return prefix + "." + name }
	if r.RecordID == "" || len(r.RecordID) > MaxUsageRecordIDLen || !VisibleASCII(r.RecordID) {
		verr.Add(f("record_id"), "invalid_record_id", fmt.Sprintf("1 to %d visible ASCII characters", MaxUsageRecordIDLen))
	}
	if !IsAPIKeyID(r.CredentialID) && !ValidID(prefixAccessKey, r.CredentialID) {
		verr.Add(f("credential_id"), "invalid_credential_id", "the key_… or AK… id that verification returned")
	}
	if !IsWorkspaceID(r.WorkspaceID) {
		verr.Add(f("workspace_id"), "invalid_workspace_id", "a workspace id")
	}
	if _, err := ParseBusinessType(string(r.Product)); err != nil {
		verr.Add(f("product"), "invalid_product", `must be "maas" or "search"`)
	}
	if r.Resource == "" || utf8.RuneCountInString(r.Resource) > MaxUsageResourceLen || !utf8.ValidString(r.Resource) || strings.ContainsFunc(r.Resource, notInName) {
		verr.Add(f("resource"), "invalid_resource", fmt.Sprintf("a model or application name, 1 to %d characters", MaxUsageResourceLen))
	}
	if len(r.Units) > MaxUsageUnits {
		verr.Add(f("units"), "too_many", fmt.Sprintf("at most %d kinds of units", MaxUsageUnits))
	}
	for name, n := range r.Units {
		if name == "" || len(name) > 64 || !VisibleASCII(name) {
			verr.Add(f("units"), "invalid_unit", "unit names are 1 to 64 visible ASCII characters")
		}
		if n < 0 || n > MaxUsageAmount {
			verr.Add(f("units."+name), "out_of_range", fmt.Sprintf("from 0 to %d", int64(MaxUsageAmount)))
		}
	}
	switch {
	case r.CostMicros == nil:
		verr.Add(f("cost_micros"), "required", "the call's cost in micro-units (0 for a free call)")
	case *r.CostMicros < 0 || *r.CostMicros > MaxUsageAmount:
		verr.Add(f("cost_micros"), "out_of_range", fmt.Sprintf("from 0 to %d micro-units", int64(MaxUsageAmount)))
	}
	if !ValidCurrency(r.Currency) {
		verr.Add(f("currency"), "invalid_currency", "an ISO 4217 code such as USD or CNY")
	}
	switch {
	case r.At.IsZero():
		verr.Add(f("at"), "required", "the time of the call")
	case r.At.After(now.Add(UsageFutureSkew)):
		verr.Add(f("at"), "in_the_future", fmt.Sprintf("more than %s ahead of the server's clock", UsageFutureSkew))
	case r.At.Before(now.Add(-maxAge)):
		verr.Add(f("at"), "too_old", fmt.Sprintf("older than the %s accepted", maxAge))
	}
	return verr.Err()
}

// VisibleASCII reports whether s holds only visible ASCII, no space (an id, an
// action, a unit's name).
func VisibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ValidCurrency reports whether s has the form of an ISO 4217 code: three capital
// ASCII letters.
func ValidCurrency(s string) bool {
	return len(s) == 3 && !strings.ContainsFunc(s, func(c rune) bool { return c < 'A' || c > 'Z' })
}
