package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/httpapi"
)

// usageRecord is one record as a gateway sends it.
func usageRecord(id, credential, ws, product string, at time.Time) map[string]any {
	return map[string]any{"record_id": id, "credential_id": credential, "workspace_id": ws, "product": product,
		"resource": "qwen-max", "units": map[string]int64{"input_tokens": 1000, "output_tokens": 200}, "cost_micros": 4200,
		"currency": "CNY", "at": at.UTC().Format(time.RFC3339Nano)}
}

// maasKey creates a workspace and a MaaS key in it: their ids.
func (h *harness) maasKey() (ws, key string) {
	h.t.Helper()
	ws = h.workspace("prod")
	r := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(r, 201, "")
	return ws, r.str("id")
}

// statuses lists the status (and code) of each record of a usage answer.
func statuses(r response) []string {
	var out []string
	for _, it := range r.items() {
		s, _ := it["status"].(string)
		if c, _ := it["code"].(string); c != "" {
			s += ":" + c
		}
		out = append(out, s)
	}
	return out
}

// TestUsageIsAttributedAsTheLogStoodAtTheCall: records are checked against what the
// credential could call at the call's time, stored once in the usage stream, and
// billed to the workspace (an API key) or the sub-account (an access key).
func TestUsageIsAttributedAsTheLogStoodAtTheCall(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	before := time.Now().Add(-time.Minute) // before any key existed
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	alice, _ := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")
	aliceAK := h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", fmt.Sprint(h.position())).Body["access_key"].(map[string]any)["id"].(string)
	called := time.Now()
	time.Sleep(10 * time.Millisecond)
	// Alice leaves the workspace, the key is deleted: their past calls still bill.
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}), 200, "")
	h.expect(h.as("DELETE", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), nil), 204, "")
	after := time.Now().Add(time.Second)
	h.waitReady(h.svc)

	records := []any{
		usageRecord("r-1", key.str("id"), ws, "MaaS", called),                    // accepted, billed to the workspace (the product in any case)
		usageRecord("r-2", aliceAK, ws, "MAAS", called),                          // accepted, billed to alice
		usageRecord("r-1", key.str("id"), ws, "maas", called),                    // the same record again
		usageRecord("r-3", key.str("id"), ws, "maas", before),                    // before the key existed
		usageRecord("r-4", key.str("id"), ws, "maas", after),                     // after it was deleted
		usageRecord("r-5", aliceAK, ws, "maas", after),                           // after alice left
		usageRecord("r-6", key.str("id"), ws, "search", called),                  // another product
		usageRecord("r-7", "key_01JD0000000000000000000000", ws, "maas", called), // never issued
		map[string]any{"record_id": "r-8", "credential_id": key.str("id"), "workspace_id": ws, "product": "maas",
			"resource": "qwen-max", "cost_micros": -5, "currency": "CNY", "at": called.UTC().Format(time.RFC3339Nano)},
		map[string]any{"record_id": "r-9", "credential_id": key.str("id"), "workspace_id": ws, "product": "maas", // no cost: not free
			"resource": "qwen-max", "currency": "CNY", "at": called.UTC().Format(time.RFC3339Nano)},
	}
	r := h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": records})
	h.expect(r, 200, "")
	want := []string{"accepted", "accepted", "duplicate", "rejected:credential_not_active", "rejected:credential_not_active",
		"rejected:not_authorized_on_workspace", "rejected:product_mismatch", "rejected:unknown_credential", "rejected:invalid_input", "rejected:invalid_input"}
	if got := statuses(r); len(got) != len(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("record %d: %s, want %s (%s)", i, got[i], want[i], r.Raw)
			}
		}
	}
	if r.Body["accepted"] != float64(2) || r.Body["duplicates"] != float64(1) || r.Body["rejected"] != float64(7) {
		t.Fatalf("counts: %s", r.Raw)
	}
	// Sent again later: a duplicate, nothing stored twice.
	again := h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": records[:2]})
	if got := statuses(again); got[0] != "duplicate" || got[1] != "duplicate" {
		t.Fatalf("resent: %v", got)
	}

	// The stream holds each accepted record once, attributed.
	js := h.svc.Store().JetStream()
	stream, err := js.Stream(context.Background(), eventstore.UsageStream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := stream.Info(context.Background())
	if info.State.Msgs != 2 {
		t.Fatalf("%d usage messages, want 2", info.State.Msgs)
	}
	cons, _ := js.OrderedConsumer(context.Background(), eventstore.UsageStream, jetstream.OrderedConsumerConfig{})
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	billed := map[string]string{}
	for m := range batch.Messages() {
		var rec struct {
			RecordID       string `json:"record_id"`
			BillingKind    string `json:"billing_kind"`
			BillingID      string `json:"billing_id"`
			OrganizationID string `json:"organization_id"`
			Product        string `json:"product"`
		}
		if err := json.Unmarshal(m.Data(), &rec); err != nil {
			t.Fatal(err)
		}
		billed[rec.RecordID] = rec.BillingKind + ":" + rec.BillingID
		if rec.Product != "maas" {
			t.Fatalf("record %s stored with product %q, want \"maas\"", rec.RecordID, rec.Product)
		}
		if m.Headers().Get("Nats-Msg-Id") != rec.OrganizationID+":"+rec.RecordID || m.Subject() != "keyledger.usage."+rec.OrganizationID+"."+ws {
			t.Fatalf("message %s on %s, %v", rec.RecordID, m.Subject(), m.Headers())
		}
	}
	if billed["r-1"] != "workspace:"+ws || billed["r-2"] != "account:"+alice {
		t.Fatalf("billed: %v", billed)
	}
	// The deleted key's and the departed member's past calls stay in the costs.
	if err := h.svc.CostsCaughtUp(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	q := "/costs?granularity=month&group_by=key&from=" + called.Add(-time.Hour).UTC().Format(time.RFC3339)
	if got := fmt.Sprint(costLines(h.as("GET", "/v1/workspaces/"+ws+q, nil))); !strings.Contains(got, key.str("id")+" CNY 4200 1") ||
		!strings.Contains(got, aliceAK+" CNY 4200 1") {
		t.Fatalf("workspace costs after the deletion: %s", got)
	}
	if got := fmt.Sprint(costLines(h.as("GET", "/v1/accounts/"+alice+q, nil))); !strings.Contains(got, aliceAK+" CNY 4200 1") {
		t.Fatalf("alice's costs after she left: %s", got)
	}

	// Only gateways report usage.
	h.expect(h.as("POST", "/v1/usage", map[string]any{"records": records[:1]}), 401, "unauthenticated")
	h.expect(h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{}}), 400, "invalid_input")
}

// TestCostLagNeverMakesTheInstanceUnready: the cost projector stopped by a message
// keyledger did not publish (and so lagging past any bound) is reported by /readyz,
// but the instance stays ready: a balancer must not take verification away because
// billing's view is behind.
func TestCostLagNeverMakesTheInstanceUnready(t *testing.T) {
	h := start(t, httpapi.Config{MaxProjectionLag: 1})
	h.waitReady(h.svc)
	js := h.svc.Store().JetStream()
	for i := range 3 {
		m := nats.NewMsg(eventstore.UsageSubjectOf(h.admin.OrganizationID, "ws_foreign"))
		m.Data = []byte(fmt.Sprintf(`{"not":"a usage record %d"}`, i))
		m.Header.Set(eventstore.HeaderSource, foreignSource)
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.call("", "GET", "/readyz", nil)
		checks, _ := r.Body["checks"].(map[string]any)
		if checks["costs"] != nil && checks["costs"] != "ok" {
			if r.Status != 200 || r.Body["status"] != "ok" {
				t.Fatalf("cost lag made the instance unready: %d %s", r.Status, r.Raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cost lag is not reported: %s", r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ws := h.workspace("still-serving")
	secret := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("secret")
	h.waitReady(h.svc)
	r := h.call(gatewayToken, "POST", "/v1/verify", map[string]any{"credential": secret, "workspace_id": ws, "product": "maas", "source_ip": "10.0.0.1"})
	if r.Status != 200 || r.Body["allowed"] != true {
		t.Fatalf("verify while costs lag: %d %s", r.Status, r.Raw)
	}
}

// TestUsageIsNotRejectedForWhatTheIndexHasNotApplied: a record naming a key this
// instance's index has not applied yet (its consumer is behind) is "unavailable", to
// be sent again, never "unknown_credential", which a gateway drops; once the index
// has the key, it is accepted. An instance whose index is not ready answers 503.
func TestUsageIsNotRejectedForWhatTheIndexHasNotApplied(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, b := h.proxied(httpapi.Config{})
	// This instance receives no key creation from now on.
	proxy.LoseReplies(func(payload []byte) bool { return bytes.Contains(payload, []byte(`"business_type":"maas"`)) })
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(key, 201, "")
	report := func() response {
		return h.on(b, gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{usageRecord("u-1", key.str("id"), ws, "maas", time.Now())}})
	}
	// To be sent again, never dropped as unknown: the record (the index not current
	// when it came), or the whole request (the index's lease lapsed before).
	// (A batch nothing of which could be judged is a 503 with Retry-After, not a
	// 200 of records a gateway would count as rejected.)
	if r := report(); r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Body["code"] != "unavailable" && r.Body["code"] != "not_ready" {
		t.Fatalf("a key the index has not applied: %d %s", r.Status, r.Raw)
	}
	proxy.LoseReplies(nil)
	h.workspace("next") // an event after the lost ones: the consumer sees the gap
	h.eventually("the record accepted once the index has the key", func() bool {
		r := report()
		return r.Status == 200 && fmt.Sprint(statuses(r)) == "[accepted]"
	})

	proxy.Stall(func(subject string) bool { return strings.HasPrefix(subject, "$JS.API.CONSUMER.CREATE.") })
	_, c := h.instanceOn(proxy.Connect(t), httpapi.Config{})
	r := h.on(c, gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{usageRecord("u-2", key.str("id"), ws, "maas", time.Now())}})
	h.expect(r, 503, "not_ready")
	proxy.Stall(nil)
}

// TestUsageRecordIdsArePerOrganization: a shared gateway numbering each tenant's
// calls on its own sends the same record id for two organizations in one batch:
// both are stored, as they are when sent apart (a record is one per organization
// and id everywhere else: the stream's message id, the costs' count).
func TestUsageRecordIdsArePerOrganization(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	beta := h.bootstrap("beta")
	r := h.call(beta.Secret, "POST", "/v1/workspaces", map[string]any{"name": "prod"})
	h.expect(r, 201, "")
	betaWS := r.str("id")
	r = h.call(beta.Secret, "POST", "/v1/workspaces/"+betaWS+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(r, 201, "")
	betaKey := r.str("id")
	h.waitReady(h.svc)
	now := time.Now().UTC()
	r = h.call(gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{
		usageRecord("call-1", key, ws, "maas", now), usageRecord("call-1", betaKey, betaWS, "maas", now)}})
	h.expect(r, 200, "")
	if got := fmt.Sprint(statuses(r)); got != "[accepted accepted]" {
		t.Fatalf("one record id in two organizations: %s", got)
	}
}

// TestUsageIntakeRecoversFromLostAcknowledgements: acknowledgements of usage
// publishes lost while the connection stays up (a stream leader changing, say)
// are a 503 while it lasts, and nothing once it is over: the publishes left
// without an answer do not keep holding the instance's slots for in-flight
// records.
func TestUsageIntakeRecoversFromLostAcknowledgements(t *testing.T) {
	h := start(t)
	ws, key := h.maasKey()
	proxy, _, srv := h.proxiedWriting(3 * time.Second)
	batch := func(prefix string, n int) map[string]any {
		recs := make([]any, n)
		for i := range recs {
			recs[i] = usageRecord(fmt.Sprintf("%s-%d", prefix, i), key, ws, "maas", time.Now())
		}
		return map[string]any{"records": recs}
	}
	proxy.LoseReplies(func(payload []byte) bool { return bytes.HasPrefix(payload, []byte(`{"stream":"KEYLEDGER_USAGE"`)) })
	h.expect(h.on(srv, gatewayToken, "POST", "/v1/usage", batch("lost", 1000)), 503, "")
	proxy.LoseReplies(nil)
	r := h.on(srv, gatewayToken, "POST", "/v1/usage", batch("after", 10))
	h.expect(r, 200, "")
	if got := fmt.Sprint(statuses(r)); got != fmt.Sprint(slices.Repeat([]string{"accepted"}, 10)) {
		t.Fatalf("after the acknowledgements came back: %s", got)
	}
}

// TestUsageOfARevokedCredentialIsNotTakenOnAStaleIndex: a key deleted on one
// instance, its late usage reported to another whose index has not applied the
// deletion: never accepted (billed) on that partial state.
func TestUsageOfARevokedCredentialIsNotTakenOnAStaleIndex(t *testing.T) {
	h := start(t)
	ws, key := h.maasKey()
	proxy, _, srv := h.proxied(httpapi.Config{})
	// This instance receives no deletion from now on.
	var lost atomic.Int32
	proxy.LoseReplies(func(payload []byte) bool {
		if bytes.Contains(payload, []byte(eventstore.HeaderType+": "+domain.TypeAPIKeyDeleted)) {
			lost.Add(1)
			return true
		}
		return false
	})
	h.expect(h.as("DELETE", "/v1/workspaces/"+ws+"/api-keys/"+key, nil), 204, "")
	h.eventually("the deletion lost on its way to this instance", func() bool { return lost.Load() > 0 })
	r := h.on(srv, gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{usageRecord("late", key, ws, "maas", time.Now())}})
	proxy.LoseReplies(nil)
	// Its index cannot be shown to hold the log as it stood: to be sent again.
	if r.Status != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("usage after the key's deletion, on an index without it: %d %s", r.Status, r.Raw)
	}
}

// TestUsageRepeatedInABatchSharesItsFirstCopysFate: a record sent twice in one
// batch whose first copy was not stored is not answered "duplicate" (which a
// gateway takes for stored and drops): both copies are to be sent again.
func TestUsageRepeatedInABatchSharesItsFirstCopysFate(t *testing.T) {
	h := start(t)
	ws, key := h.maasKey()
	proxy, _, srv := h.proxiedWriting(3 * time.Second)
	// The first record's publish never reaches the stream.
	proxy.StallWhere(func(subject string, payload []byte) bool {
		return strings.HasPrefix(subject, "keyledger.usage.") && bytes.Contains(payload, []byte(`"record_id":"r-1"`))
	})
	now := time.Now()
	r := h.on(srv, gatewayToken, "POST", "/v1/usage", map[string]any{"records": []any{usageRecord("r-1", key, ws, "maas", now),
		usageRecord("r-2", key, ws, "maas", now), usageRecord("r-1", key, ws, "maas", now)}})
	proxy.StallWhere(nil)
	h.expect(r, 200, "")
	if got := fmt.Sprint(statuses(r)); got != "[rejected:unavailable accepted rejected:unavailable]" {
		t.Fatalf("a repeat of a record not stored: %s", got)
	}
}

// TestAFullUsageBatchFitsTheBodyLimit: 1,000 records, each as large as the checks
// allow (a 128-character id, a 128-character resource in CJK, 16 units with
// 64-character names), are one request, as the limit of 1,000 records says.
func TestAFullUsageBatchFitsTheBodyLimit(t *testing.T) {
	h := start(t)
	ws, key := h.maasKey()
	units := map[string]int64{}
	for i := range 16 {
		units[fmt.Sprintf("%064d", i)] = 999_999_999
	}
	recs := make([]any, 1000)
	for i := range recs {
		r := usageRecord(fmt.Sprintf("%0128d", i), key, ws, "maas", time.Now())
		r["resource"], r["units"] = strings.Repeat("模", 128), units
		recs[i] = r
	}
	body, _ := json.Marshal(map[string]any{"records": recs})
	if len(body) <= 1<<20 { // more than the other routes take
		t.Fatalf("the batch is only %d bytes", len(body))
	}
	r := h.on(h.http, gatewayToken, "POST", "/v1/usage", map[string]any{"records": recs})
	h.expect(r, 200, "")
	if r.Body["accepted"] != float64(1000) {
		t.Fatalf("accepted %v of 1,000", r.Body["accepted"])
	}
}
