package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestCostsSumUsageExactly: costs per workspace, per account and per organization,
// by hour, day or month, grouped by key, resource, workspace or account, per
// currency; each record counted once even when the stream holds it twice (a resend
// outside the duplicate window); readers need cost:read, and membership for a
// workspace's costs.
func TestCostsSumUsageExactly(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	ws := h.workspace("prod")
	other := h.workspace("staging")
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	alice, aliceSecret := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")
	ak := h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", fmt.Sprint(h.position())).Body["access_key"].(map[string]any)["id"].(string)
	h.waitReady(h.svc)

	// The calls happen now, after the credentials exist (usage is attributed as the log
	// stood at the call's time); they all fall in the hour of now.
	now := time.Now().UTC()
	hour := now.Truncate(time.Hour)
	if now.Sub(hour) > 59*time.Minute { // too close to the next hour for one bucket
		time.Sleep(time.Minute + time.Second)
		now, hour = time.Now().UTC(), time.Now().UTC().Truncate(time.Hour)
	}
	rec := func(id, credential, resource, currency string, cost int64, at time.Time) map[string]any {
		r := usageRecord(id, credential, ws, "maas", at)
		r["resource"], r["currency"], r["cost_micros"] = resource, currency, cost
		return r
	}
	records := []any{
		rec("c-1", key, "qwen-max", "CNY", 9_000_000_000_000, now),
		rec("c-2", key, "qwen-max", "CNY", 9_000_000_000_000, now),
		rec("c-3", key, "qwen-plus", "CNY", 7, now),
		rec("c-4", ak, "qwen-max", "CNY", 100, now),
		rec("c-5", key, "qwen-max", "USD", 3, now),
	}
	r := h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": records})
	h.expect(r, 200, "")
	if r.Body["accepted"] != float64(5) {
		t.Fatalf("usage: %s", r.Raw)
	}
	// The same record stored again, as a resend days later (outside the stream's
	// duplicate window, so without a Nats-Msg-Id the stream would drop) would be:
	// counted once.
	orgID := h.admin.OrganizationID
	again := domain.UsageRecorded{RecordID: "c-1", OrganizationID: orgID, WorkspaceID: ws, CredentialID: key, Product: domain.BusinessMaaS,
		Resource: "qwen-max", Units: map[string]int64{}, CostMicros: 9_000_000_000_000, Currency: "CNY", At: now, BillingKind: "workspace", BillingID: ws}
	js := h.svc.Store().JetStream()
	m, err := eventstore.UsageMessage("keyledger", again, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Del(jetstream.MsgIDHeader)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.CostsCaughtUp(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	q := fmt.Sprintf("?from=%s&to=%s", hour.Format(time.RFC3339), hour.Add(time.Hour).Format(time.RFC3339))
	byHour := h.as("GET", "/v1/workspaces/"+ws+"/costs"+q+"&granularity=hour&currency=CNY", nil)
	h.expect(byHour, 200, "")
	got := fmt.Sprint(costLines(byHour))
	want := fmt.Sprint([]string{hour.Format(time.RFC3339) + " CNY 18000000000107 4"})
	if got != want {
		t.Fatalf("by hour:\n%s\nwant\n%s", got, want)
	}
	day := hour.Truncate(24 * time.Hour).Format(time.RFC3339)
	byResource := h.as("GET", "/v1/workspaces/"+ws+"/costs"+q+"&group_by=resource", nil)
	if got := fmt.Sprint(costLines(byResource)); got != fmt.Sprint([]string{
		day + " qwen-max CNY 18000000000100 3", day + " qwen-max USD 3 1", day + " qwen-plus CNY 7 1"}) {
		t.Fatalf("by resource: %s", got)
	}
	byKey := h.as("GET", "/v1/workspaces/"+ws+"/costs"+q+"&group_by=key&currency=CNY", nil)
	if got := fmt.Sprint(costLines(byKey)); got != fmt.Sprint([]string{day + " " + ak + " CNY 100 1", day + " " + key + " CNY 18000000000007 3"}) &&
		got != fmt.Sprint([]string{day + " " + key + " CNY 18000000000007 3", day + " " + ak + " CNY 100 1"}) {
		t.Fatalf("by key: %s", got)
	}
	account := h.as("GET", "/v1/accounts/"+alice+"/costs"+q+"&granularity=month&group_by=workspace", nil)
	if lines := costLines(account); len(lines) != 1 || !strings.HasSuffix(lines[0], ws+" CNY 100 1") {
		t.Fatalf("alice's costs: %s", account.Raw)
	}
	org := h.as("GET", "/v1/costs"+q+"&granularity=month&currency=USD", nil)
	if lines := costLines(org); len(lines) != 1 || !strings.HasSuffix(lines[0], " USD 3 1") {
		t.Fatalf("organization costs: %s", org.Raw)
	}
	csv := h.as("GET", "/v1/costs"+q+"&granularity=month&currency=USD", nil, "Accept", "text/csv")
	if csv.Status != 200 || !strings.HasPrefix(string(csv.Raw), "period_start,group,currency,cost_micros,records\n") || !strings.Contains(string(csv.Raw), ",USD,3,1") {
		t.Fatalf("CSV: %d %s", csv.Status, csv.Raw)
	}
	if r := h.as("GET", "/v1/costs"+q+"&granularity=month&currency=USD", nil, "Accept", "text/csv;q=0, application/json"); r.Status != 200 ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("CSV refused: %d %v %s", r.Status, r.Header, r.Raw)
	}
	// A resource a spreadsheet would run as a formula is text in the CSV.
	r = h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{rec("c-6", key, "=1+2", "EUR", 1, now)}})
	if r.Status != 200 || r.Body["accepted"] != float64(1) {
		t.Fatalf("usage: %s", r.Raw)
	}
	if err := h.svc.CostsCaughtUp(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	csv = h.as("GET", "/v1/costs"+q+"&group_by=resource&currency=EUR", nil, "Accept", "text/csv")
	if !strings.Contains(string(csv.Raw), ",'=1+2,EUR,1,1") {
		t.Fatalf("CSV of a formula-like resource: %s", csv.Raw)
	}
	if empty := h.as("GET", "/v1/workspaces/"+other+"/costs"+q, nil); empty.Status != 200 || len(empty.items()) != 0 {
		t.Fatalf("a workspace without usage: %s", empty.Raw)
	}

	// Who may read.
	h.expect(h.call(aliceSecret, "GET", "/v1/costs", nil), 403, "forbidden")
	h.role("finance", []string{"cost:read"}, alice)
	h.expect(h.call(aliceSecret, "GET", "/v1/costs", nil), 200, "")
	h.expect(h.call(aliceSecret, "GET", "/v1/workspaces/"+ws+"/costs", nil), 200, "")
	h.expect(h.call(aliceSecret, "GET", "/v1/workspaces/"+other+"/costs", nil), 403, "not_a_member")
	h.expect(h.as("GET", "/v1/costs?granularity=week", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/costs?from=yesterday", nil), 400, "invalid_input")
	for _, c := range []string{"%00%00%00", "%FF%FF%FF", "US$", "123", "usd"} { // what no usage record holds
		h.expect(h.as("GET", "/v1/costs?currency="+c, nil), 400, "invalid_input")
	}
	h.expect(h.call(h.bootstrap("rival").Secret, "GET", "/v1/workspaces/"+ws+"/costs", nil), 404, "workspace_not_found")
}

// costLines renders a cost answer as "period [group] currency cost records" lines.
func costLines(r response) []string {
	var out []string
	for _, it := range r.items() {
		line := fmt.Sprint(it["period_start"])
		if g, _ := it["group"].(string); g != "" {
			line += " " + g
		}
		out = append(out, fmt.Sprintf("%s %s %v %.0f", line, it["currency"], it["cost_micros"], it["records"]))
	}
	return out
}

// TestCostsSumBeyondSixtyFourBits: 10,000 records at the largest amount a record may
// carry sum to 10^19, more than an int64 holds (and far more than a float64 keeps
// exactly): the total is exact, as a string of digits, in JSON and CSV.
func TestCostsSumBeyondSixtyFourBits(t *testing.T) {
	h := start(t)
	ws := h.workspace("big")
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	h.waitReady(h.svc)
	now := time.Now().UTC()
	for b := range 10 {
		records := make([]any, 1000)
		for i := range records {
			r := usageRecord(fmt.Sprintf("big-%d-%d", b, i), key, ws, "maas", now)
			r["cost_micros"] = domain.MaxUsageAmount
			records[i] = r
		}
		r := h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": records})
		if r.Status != 200 || r.Body["accepted"] != float64(1000) {
			t.Fatalf("usage: %d %.300s", r.Status, r.Raw)
		}
	}
	if err := h.svc.CostsCaughtUp(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf("?from=%s&to=%s&granularity=month", now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	r := h.as("GET", "/v1/workspaces/"+ws+"/costs"+q, nil)
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["cost_micros"] != "10000000000000000000" || items[0]["records"] != float64(10000) {
		t.Fatalf("the sum of 10,000 records of 10^15: %s", r.Raw)
	}
	csv := h.as("GET", "/v1/costs"+q, nil, "Accept", "text/csv")
	if !strings.Contains(string(csv.Raw), ",CNY,10000000000000000000,10000\n") {
		t.Fatalf("CSV: %s", csv.Raw)
	}
}

// TestCostsShowASubAccountOnlyWhatItMaySee: with cost:read, a sub-account reads
// the organization's costs on the workspaces it is authorized on, its own account's,
// and another account's only with account:read, never a workspace it is not on;
// nor does another account's workspace list show one. The primary sees everything.
func TestCostsShowASubAccountOnlyWhatItMaySee(t *testing.T) {
	h := start(t)
	ws, hidden := h.workspace("shared"), h.workspace("hidden")
	alice, aliceSecret := h.subAccount("alice")
	bob, _ := h.subAccount("bob")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice, bob}}), 200, "")
	h.expect(h.as("PUT", "/v1/workspaces/"+hidden+"/members", map[string]any{"account_ids": []string{bob}}), 200, "")
	shared := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	secret := h.as("POST", "/v1/workspaces/"+hidden+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	bobAK := h.as("GET", "/v1/accounts/"+bob, nil, "X-Keyledger-Position", h.positionHeader()).Body["access_key"].(map[string]any)["id"].(string)
	h.waitReady(h.svc)
	now := time.Now().UTC()
	rec := func(id, credential, workspace string) map[string]any {
		return usageRecord(id, credential, workspace, "maas", now)
	}
	r := h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{
		rec("s-1", shared, ws), rec("h-1", secret, hidden), rec("b-1", bobAK, ws), rec("b-2", bobAK, hidden)}})
	if r.Status != 200 || r.Body["accepted"] != float64(4) {
		t.Fatalf("usage: %s", r.Raw)
	}
	if err := h.svc.CostsCaughtUp(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	q := fmt.Sprintf("?from=%s&to=%s&granularity=month&group_by=workspace", now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	groups := func(r response) []string {
		h.t.Helper()
		h.expect(r, 200, "")
		var out []string
		for _, it := range r.items() {
			out = append(out, fmt.Sprintf("%s:%v", it["group"], it["cost_micros"]))
		}
		return out
	}
	if got := fmt.Sprint(groups(h.as("GET", "/v1/costs"+q, nil))); !strings.Contains(got, hidden+":8400") || !strings.Contains(got, ws+":8400") {
		t.Fatalf("the primary's organization costs: %s", got)
	}
	h.role("finance", []string{"cost:read"}, alice)
	if got := fmt.Sprint(groups(h.call(aliceSecret, "GET", "/v1/costs"+q, nil))); got != fmt.Sprint([]string{ws + ":8400"}) {
		t.Fatalf("a sub-account's organization costs: %s, want only %s's", got, ws)
	}
	h.expect(h.call(aliceSecret, "GET", "/v1/accounts/"+alice+"/costs"+q, nil), 200, "")
	h.expect(h.call(aliceSecret, "GET", "/v1/accounts/"+bob+"/costs"+q, nil), 403, "forbidden")

	h.role("directory", []string{"account:read"}, alice)
	if got := fmt.Sprint(groups(h.call(aliceSecret, "GET", "/v1/accounts/"+bob+"/costs"+q, nil))); got != fmt.Sprint([]string{ws + ":4200"}) {
		t.Fatalf("another account's costs, read with account:read: %s, want only %s's", got, ws)
	}
	r = h.call(aliceSecret, "GET", "/v1/accounts/"+bob+"/workspaces", nil, "X-Keyledger-Position", h.positionHeader())
	h.expect(r, 200, "")
	if got := fmt.Sprint(r.Body["workspace_ids"]); got != fmt.Sprint([]any{ws}) {
		t.Fatalf("bob's workspaces as alice sees them: %s, want only %s", got, ws)
	}
	r = h.as("GET", "/v1/accounts/"+bob+"/workspaces", nil)
	if got := r.Body["workspace_ids"].([]any); len(got) != 2 {
		t.Fatalf("bob's workspaces as the primary sees them: %v", got)
	}
}
