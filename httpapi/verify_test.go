package httpapi_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/httpapi"
)

// verify asks the data plane of an instance (the first one when srv is nil).
func (h *harness) verify(srv *httptest.Server, credential, ws, product, ip string) response {
	h.t.Helper()
	if srv == nil {
		srv = h.http
	}
	saved := h.http
	h.http = srv
	defer func() { h.http = saved }()
	return h.call(gatewayToken, "POST", "/v1/verify", map[string]any{"credential": credential, "workspace_id": ws, "product": product, "source_ip": ip})
}

// applied waits until this instance's credential index has the write of r.
func (h *harness) applied(r response) {
	h.t.Helper()
	pos, err := strconv.ParseUint(r.Header.Get("X-Keyledger-Position"), 10, 64)
	if err != nil {
		h.t.Fatalf("no position in %v", r.Header)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.svc.Index().WaitFor(ctx, pos); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) decision(r response, code string, allowed bool) {
	h.t.Helper()
	if r.Status != 200 || r.str("code") != code || r.Body["allowed"] != allowed {
		h.t.Fatalf("got %d %s, want %s (allowed %v)", r.Status, r.Raw, code, allowed)
	}
}

func TestVerifyAPIKeys(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	other := h.workspace("other")
	base := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"})
	maas, maasID := r.str("secret"), r.str("id")
	r = h.as("POST", base, map[string]any{"business_type": "search", "qps_limit": 1})
	search := r.str("secret")
	h.applied(r)

	r = h.verify(nil, maas, ws, "maas", "10.20.30.40")
	h.decision(r, "VALID", true)
	if r.str("key_id") != maasID || r.str("workspace_id") != ws || fmt.Sprint(r.Body["billing_subject"]) != "map[id:"+ws+" type:workspace]" {
		t.Fatalf("valid: %s", r.Raw)
	}
	h.decision(h.verify(nil, maas, ws, "maas", "192.0.2.7"), "VALID", true)
	h.decision(h.verify(nil, maas, ws, "maas", "2001:db8:1::5"), "VALID", true)
	h.decision(h.verify(nil, maas, ws, "maas", "::ffff:10.0.0.1"), "VALID", true)
	h.decision(h.verify(nil, maas, ws, "maas", "192.0.2.8"), "IP_NOT_ALLOWED", false)
	h.decision(h.verify(nil, maas, ws, "maas", "2001:db9::1"), "IP_NOT_ALLOWED", false)
	h.decision(h.verify(nil, maas, other, "maas", "10.0.0.1"), "WORKSPACE_MISMATCH", false)
	h.decision(h.verify(nil, maas, ws, "search", "10.0.0.1"), "PRODUCT_MISMATCH", false)
	h.decision(h.verify(nil, "klm_nonsense", ws, "maas", "10.0.0.1"), "MALFORMED", false)
	h.decision(h.verify(nil, otherLast(maas), ws, "maas", "10.0.0.1"), "MALFORMED", false)
	h.decision(h.verify(nil, "", ws, "maas", "10.0.0.1"), "MALFORMED", false)
	// Well-formed but never issued: NOT_FOUND, and nothing more is said.
	never, _ := domain.GenerateCredential(rand.Reader, domain.KindMaaSKey)
	r = h.verify(nil, never.String(), ws, "maas", "10.0.0.1")
	h.decision(r, "NOT_FOUND", false)
	if len(r.Body) != 2 {
		t.Fatalf("an unknown key's answer says more than its code: %s", r.Raw)
	}

	// Rate limited, with Retry-After information.
	h.decision(h.verify(nil, search, ws, "search", "1.1.1.1"), "VALID", true)
	r = h.verify(nil, search, ws, "search", "1.1.1.1")
	h.decision(r, "RATE_LIMITED", false)
	if r.Header.Get("Retry-After") != "1" || r.Body["retry_after_ms"].(float64) <= 0 {
		t.Fatalf("rate limited: %v %s", r.Header, r.Raw)
	}

	// Deleted: refused at once on the instance that accepted the deletion.
	h.expect(h.as("DELETE", base+"/"+maasID, nil), 204, "")
	h.decision(h.verify(nil, maas, ws, "maas", "10.0.0.1"), "DELETED", false)

	// Bad requests and the gateway token.
	h.expect(h.call(gatewayToken, "POST", "/v1/verify", map[string]any{"credential": maas, "workspace_id": ws, "product": "chat", "source_ip": "nope"}), 400, "invalid_input")
	h.expect(h.call("", "POST", "/v1/verify", map[string]any{"credential": maas}), 401, "unauthenticated")
	h.expect(h.call(h.admin.Secret, "POST", "/v1/verify", map[string]any{"credential": maas}), 401, "unauthenticated")
}

func TestVerifyAccessKeys(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	outside := h.workspace("outside")
	alice, secret := h.subAccount("alice")
	r := h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}})
	h.applied(r)
	r = h.verify(nil, secret, ws, "search", "10.0.0.1")
	h.decision(r, "VALID", true)
	if r.str("account_id") != alice || fmt.Sprint(r.Body["billing_subject"]) != "map[id:"+alice+" type:account]" {
		t.Fatalf("ak valid: %s", r.Raw)
	}
	h.decision(h.verify(nil, h.admin.Secret, outside, "maas", "10.0.0.1"), "VALID", true) // the primary: every workspace
	h.decision(h.verify(nil, secret, outside, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)
	other := h.bootstrap("other")
	h.decision(h.verify(nil, other.Secret, ws, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)

	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "disabled"}), 200, "")
	h.decision(h.verify(nil, secret, ws, "maas", "10.0.0.1"), "DISABLED", false)
	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "enabled"}), 200, "")
	h.decision(h.verify(nil, secret, ws, "maas", "10.0.0.1"), "VALID", true)
	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "disabled"}), 200, "")
	h.decision(h.verify(nil, secret, ws, "maas", "10.0.0.1"), "DISABLED", false)
	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "enabled"}), 200, "")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}), 200, "")
	h.decision(h.verify(nil, secret, ws, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)
	h.expect(h.as("DELETE", "/v1/accounts/"+alice+"/access-key", nil), 204, "")
	h.decision(h.verify(nil, secret, ws, "maas", "10.0.0.1"), "DELETED", false)
}

// A second instance in the same test sees revocations accepted by the first, and
// /v1/cluster/applied proves when.
func TestRevocationReachesEveryInstance(t *testing.T) {
	h := start(t)
	_, second := h.instance(httpapi.Config{})
	ws := h.workspace("prod")
	alice, akSecret := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")
	r := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	key, keyID := r.str("secret"), r.str("id")
	waitApplied(h, r.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(second, key, ws, "maas", "10.0.0.1"), "VALID", true)
	h.decision(h.verify(second, akSecret, ws, "maas", "10.0.0.1"), "VALID", true)

	r = h.as("DELETE", "/v1/workspaces/"+ws+"/api-keys/"+keyID, nil)
	h.expect(r, 204, "")
	waitApplied(h, r.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(second, key, ws, "maas", "10.0.0.1"), "DELETED", false)

	r = h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "disabled"})
	waitApplied(h, r.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(second, akSecret, ws, "maas", "10.0.0.1"), "DISABLED", false)
	r = h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "enabled"})
	waitApplied(h, r.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(second, akSecret, ws, "maas", "10.0.0.1"), "VALID", true)

	r = h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}})
	waitApplied(h, r.Header.Get("X-Keyledger-Position"))
	h.decision(h.verify(second, akSecret, ws, "maas", "10.0.0.1"), "NOT_AUTHORIZED_ON_WORKSPACE", false)

	c := h.call(gatewayToken, "GET", "/v1/cluster", nil)
	h.expect(c, 200, "")
	if n := len(c.Body["instances"].([]any)); n != 2 {
		t.Fatalf("cluster: %s", c.Raw)
	}
	// The cluster's layout and every write position are the operators' business.
	h.expect(h.as("GET", "/v1/cluster", nil), 401, "unauthenticated")
	h.expect(h.as("GET", "/v1/cluster/applied?position=x", nil), 400, "invalid_input")
	r = h.as("GET", "/v1/cluster/applied?position=999999", nil)
	if r.Body["applied"] != false {
		t.Fatalf("a future position is not applied: %s", r.Raw)
	}
}

// waitApplied polls /v1/cluster/applied until every live instance (both instances of
// the test: the operators' /v1/cluster tells) has the position.
func waitApplied(h *harness, position string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := h.as("GET", "/v1/cluster/applied?position="+position, nil)
		h.expect(r, 200, "")
		if _, ok := r.Body["instances"]; ok {
			h.t.Fatalf("a tenant sees the instances: %s", r.Raw)
		}
		c := h.call(gatewayToken, "GET", "/v1/cluster", nil)
		if r.Body["applied"] == true && len(c.Body["instances"].([]any)) == 2 {
			if r.Body["applied_at"] == nil {
				h.t.Fatalf("applied without a time: %s", r.Raw)
			}
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("position %s never applied everywhere: %s", position, r.Raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVerifyBatch: up to 100 decisions in one request, each as the single route
// answers it, in order; bad input names the item and decides nothing.
func TestVerifyBatch(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"
	maas := h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8"})
	search := h.as("POST", base, map[string]any{"business_type": "search", "qps_limit": 1})
	h.applied(search)
	item := func(cred, product, ip string) map[string]any {
		return map[string]any{"credential": cred, "workspace_id": ws, "product": product, "source_ip": ip}
	}
	// Bad input decides nothing: the valid item beside the bad one would take the
	// one token of the key limited to 1 QPS, which the batch below gets.
	bad := h.call(gatewayToken, "POST", "/v1/verify/batch", map[string]any{"items": []any{item(search.str("secret"), "search", "10.0.0.1"),
		item(maas.str("secret"), "maas", "")}})
	h.expect(bad, 400, "invalid_input")
	if f := bad.Body["fields"].([]any)[0].(map[string]any); f["field"] != "items[1].source_ip" {
		t.Fatalf("bad item: %s", bad.Raw)
	}
	items := []any{item(maas.str("secret"), "maas", "10.0.0.1"), item(maas.str("secret"), "maas", "192.0.2.1"),
		item(search.str("secret"), "search", "10.0.0.1"), item(search.str("secret"), "search", "10.0.0.1"), item("nope", "maas", "10.0.0.1")}
	r := h.call(gatewayToken, "POST", "/v1/verify/batch", map[string]any{"items": items})
	h.expect(r, 200, "")
	var got []string
	for _, d := range r.items() {
		got = append(got, fmt.Sprint(d["code"], "/", d["allowed"]))
	}
	if fmt.Sprint(got) != "[VALID/true IP_NOT_ALLOWED/false VALID/true RATE_LIMITED/false MALFORMED/false]" {
		t.Fatalf("decisions: %v (%s)", got, r.Raw)
	}
	if d := r.items()[0]; d["key_id"] != maas.str("id") || d["billing_subject"] == nil {
		t.Fatalf("an allowed decision names the key and who pays: %v", d)
	}
	if d := r.items()[3]; d["retry_after_ms"] == nil {
		t.Fatalf("a rate-limited decision says when: %v", d)
	}
	many := make([]any, 101)
	for i := range many {
		many[i] = items[0]
	}
	h.expect(h.call(gatewayToken, "POST", "/v1/verify/batch", map[string]any{"items": many}), 400, "invalid_input")
	h.expect(h.call(gatewayToken, "POST", "/v1/verify/batch", map[string]any{"items": []any{}}), 400, "invalid_input")
	h.expect(h.as("POST", "/v1/verify/batch", map[string]any{"items": items}), 401, "unauthenticated")
}
