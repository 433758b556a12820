package httpapi_test

import (
	"net/url"
	"slices"
	"testing"
	"time"
)

// TestDecisionReplayGivesTheCodesVerifyGave: during a scenario the data plane
// answers calls; afterwards, with everything changed, each decision replayed at
// the instant of its call gets the code the data plane gave, with the events
// behind it.
func TestDecisionReplayGivesTheCodesVerifyGave(t *testing.T) {
	h := start(t)
	ws, other := h.workspace("prod"), h.workspace("other")
	type call struct {
		credential, id, ws, product, ip string
		at                              time.Time
		code                            string
	}
	var calls []call
	ask := func(secret, id, ws, product, ip string) {
		t.Helper()
		r := h.verify(nil, secret, ws, product, ip)
		h.expect(r, 200, "")
		calls = append(calls, call{secret, id, ws, product, ip, time.Now(), r.str("code")})
		time.Sleep(2 * time.Millisecond) // the next write is stamped later
	}
	write := func(r response, status int) {
		t.Helper()
		h.expect(r, status, "")
		h.applied(r)
	}

	base := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8"})
	write(r, 201)
	key, keyID := r.str("secret"), r.str("id")
	for _, c := range [][3]string{{ws, "maas", "10.1.2.3"}, {ws, "maas", "192.0.2.1"}, {ws, "search", "10.1.2.3"}, {other, "maas", "10.1.2.3"}} {
		ask(key, keyID, c[0], c[1], c[2])
	}
	write(h.as("PATCH", base+"/"+keyID, map[string]any{"allowlist": "192.0.2.0/24"}), 200)
	ask(key, keyID, ws, "maas", "10.1.2.3")
	ask(key, keyID, ws, "maas", "192.0.2.1")

	bob, bobSecret := h.subAccount("bob")
	r = h.as("GET", "/v1/accounts/"+bob, nil, "X-Keyledger-Position", h.positionHeader())
	akID := r.Body["access_key"].(map[string]any)["id"].(string)
	h.waitReady(h.svc)
	ask(bobSecret, akID, ws, "search", "10.1.2.3") // not a member
	write(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{bob}}), 200)
	ask(bobSecret, akID, ws, "search", "10.1.2.3")
	write(h.as("PATCH", "/v1/accounts/"+bob, map[string]any{"status": "disabled"}), 200)
	ask(bobSecret, akID, ws, "search", "10.1.2.3")
	write(h.as("PATCH", "/v1/accounts/"+bob, map[string]any{"status": "enabled"}), 200)
	write(h.as("DELETE", "/v1/accounts/"+bob+"/access-key", nil), 204)
	ask(bobSecret, akID, ws, "search", "10.1.2.3")
	write(h.as("DELETE", base+"/"+keyID, nil), 204)
	ask(key, keyID, ws, "maas", "192.0.2.1")

	seen := map[string]bool{}
	for i, c := range calls {
		q := url.Values{"credential_id": {c.id}, "workspace_id": {c.ws}, "product": {c.product}, "source_ip": {c.ip},
			"at": {c.at.Format(time.RFC3339Nano)}}
		r := h.as("GET", "/v1/audit/decision?"+q.Encode(), nil)
		h.expect(r, 200, "")
		if r.str("code") != c.code {
			t.Errorf("call %d (%v): verify said %s, the replay %s: %s", i, q, c.code, r.str("code"), r.Raw)
		}
		if ev, _ := r.Body["evidence"].([]any); len(ev) == 0 {
			t.Errorf("call %d: no evidence: %s", i, r.Raw)
		}
		seen[c.code] = true
	}
	for _, code := range []string{"VALID", "IP_NOT_ALLOWED", "PRODUCT_MISMATCH", "WORKSPACE_MISMATCH", "NOT_AUTHORIZED_ON_WORKSPACE", "DISABLED", "DELETED"} {
		if !seen[code] {
			t.Errorf("the scenario never got %s", code)
		}
	}

	// The evidence names the edit that set the allowlist in force.
	q := url.Values{"credential_id": {keyID}, "workspace_id": {ws}, "product": {"maas"}, "source_ip": {"192.0.2.1"},
		"at": {calls[5].at.Format(time.RFC3339Nano)}}
	r = h.as("GET", "/v1/audit/decision?"+q.Encode(), nil)
	ev := r.Body["evidence"].([]any)[0].(map[string]any)
	if ev["action"] != "workspace.api_key_updated" || ev["actor"].(map[string]any)["name"] != "admin" || r.Body["allowlist"].([]any)[0] != "192.0.2.0/24" {
		t.Fatalf("evidence: %s", r.Raw)
	}
	h.expect(h.as("GET", "/v1/audit/decision?credential_id=x", nil), 400, "invalid_input")

	// The primary's access key: its account's evidence is the organization's creation.
	q = url.Values{"credential_id": {h.admin.AccessKeyID}, "workspace_id": {ws}, "product": {"maas"}, "source_ip": {"10.1.2.3"},
		"at": {time.Now().Format(time.RFC3339Nano)}}
	r = h.as("GET", "/v1/audit/decision?"+q.Encode(), nil)
	h.expect(r, 200, "")
	var whats []string
	for _, e := range r.Body["evidence"].([]any) {
		whats = append(whats, e.(map[string]any)["what"].(string))
	}
	if !slices.Contains(whats, "account") {
		t.Fatalf("the primary's decision without its account's evidence: %s", r.Raw)
	}
}

// TestDecisionReplayCitesTheRoleThatGrants: an account on a workspace through a
// role has, as its "roles" evidence, the events of that role which put it there
// (its inclusion in the role, the workspace's addition to the role), not the
// latest change to any of its roles; once the grant is gone, the event that ended
// it.
func TestDecisionReplayCitesTheRoleThatGrants(t *testing.T) {
	h := start(t)
	ws, other := h.workspace("prod"), h.workspace("other")
	bob, _ := h.subAccount("bob")
	r := h.as("GET", "/v1/accounts/"+bob, nil, "X-Keyledger-Position", h.positionHeader())
	akID := r.Body["access_key"].(map[string]any)["id"].(string)

	before := h.position()
	r = h.as("POST", "/v1/roles", map[string]any{"name": "granting", "permissions": []string{"api_key:read"}, "users": []string{bob}, "workspaces": []string{ws}})
	h.expect(r, 201, "")
	granting, grantedAt := r.str("id"), h.position()
	h.applied(r)
	time.Sleep(2 * time.Millisecond)
	r = h.as("POST", "/v1/roles", map[string]any{"name": "unrelated", "permissions": []string{"api_key:read"}, "users": []string{bob}, "workspaces": []string{other}})
	h.expect(r, 201, "")
	h.applied(r)
	time.Sleep(2 * time.Millisecond)
	member := time.Now()
	time.Sleep(2 * time.Millisecond)

	replay := func(at time.Time) response {
		t.Helper()
		q := url.Values{"credential_id": {akID}, "workspace_id": {ws}, "product": {"search"}, "source_ip": {"10.1.2.3"},
			"at": {at.Format(time.RFC3339Nano)}}
		r := h.as("GET", "/v1/audit/decision?"+q.Encode(), nil)
		h.expect(r, 200, "")
		return r
	}
	roles := func(r response) (out []map[string]any) {
		for _, e := range r.Body["evidence"].([]any) {
			if e := e.(map[string]any); e["what"] == "roles" {
				out = append(out, e)
			}
		}
		return out
	}
	r = replay(member)
	if r.str("code") != "VALID" {
		t.Fatalf("bob through the role: %s", r.Raw)
	}
	actions := map[string]bool{}
	for _, e := range roles(r) {
		if p := uint64(e["position"].(float64)); p <= before || p > grantedAt {
			t.Errorf("roles evidence at %d, outside the granting role's creation (%d, %d]: %s", p, before, grantedAt, r.Raw)
		}
		actions[e["action"].(string)] = true
	}
	if !actions["organization.role_user_included"] || !actions["organization.role_workspace_added"] {
		t.Errorf("the granting role's inclusion and workspace are not both cited: %s", r.Raw)
	}

	// The workspace taken off the role: the replay after it cites that removal.
	r = h.as("PATCH", "/v1/roles/"+granting, map[string]any{"workspaces": []string{}})
	h.expect(r, 200, "")
	h.applied(r)
	removedAt := h.position()
	time.Sleep(2 * time.Millisecond)
	r = replay(time.Now())
	ev := roles(r)
	if r.str("code") != "NOT_AUTHORIZED_ON_WORKSPACE" || len(ev) != 1 || ev[0]["action"] != "organization.role_workspace_removed" ||
		uint64(ev[0]["position"].(float64)) != removedAt {
		t.Fatalf("after the workspace left the role (at %d): %s", removedAt, r.Raw)
	}
}
