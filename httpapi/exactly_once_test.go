package httpapi_test

import (
	"bytes"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/httpapi"
)

// eventsAcks matches the acknowledgements of appends to the log.
func eventsAcks(payload []byte) bool {
	return bytes.HasPrefix(payload, []byte(`{"stream":"KEYLEDGER_EVENTS"`))
}

// keysIn counts the keys ever created in a workspace, from the log.
func (h *harness) keysIn(ws string) int { return h.countIn(ws, domain.APIKeyCreated{}) }

// TestIdempotencyKeyHasOneEffectWhenTheOutcomeIsUnknown: the append is stored but its
// acknowledgement is lost, so the client gets a 503. Its retry with the same key gets
// the first request's result, with the secrets that work, and nothing is created
// twice: the key, the account, the workspace and the role.
func TestIdempotencyKeyHasOneEffectWhenTheOutcomeIsUnknown(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv := h.proxied(httpapi.Config{})

	for _, tc := range []struct {
		name, path string
		body       map[string]any
	}{
		{"key", "/v1/workspaces/" + ws + "/api-keys", map[string]any{"business_type": "maas"}},
		{"batch", "/v1/workspaces/" + ws + "/api-keys/batch", map[string]any{"count": 2, "naming": map[string]any{"prefix": "once"}}},
		{"account", "/v1/accounts", map[string]any{"name": "carol"}},
		{"workspace", "/v1/workspaces", map[string]any{"name": "staging"}},
		{"role", "/v1/roles", map[string]any{"name": "auditors", "permissions": []string{"api_key:read"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, keysBefore := h.position(), h.keysIn(ws)
			proxy.LoseReplies(eventsAcks)
			r := h.on(srv, h.admin.Secret, "POST", tc.path, tc.body, "Idempotency-Key", "lost-ack-"+tc.name)
			h.expect(r, 503, "unavailable")
			proxy.LoseReplies(nil)
			if h.position() == before {
				t.Fatal("the append did not reach the log: this test needs the lost-ack case")
			}
			written := h.position()
			again := h.on(srv, h.admin.Secret, "POST", tc.path, tc.body, "Idempotency-Key", "lost-ack-"+tc.name)
			h.expect(again, 201, "")
			keys := again.items()
			if tc.name == "key" {
				keys = []map[string]any{again.Body}
			}
			switch tc.name {
			case "key", "batch":
				if got := h.keysIn(ws) - keysBefore; got != len(keys) {
					t.Fatalf("%d keys created for one request of %d", got, len(keys))
				}
				for _, k := range keys {
					secret, _ := k["secret"].(string)
					h.decision(h.verify(h.http, secret, ws, "search", "10.0.0.1"), map[bool]string{true: "PRODUCT_MISMATCH", false: "VALID"}[tc.name == "key"], tc.name != "key")
				}
			default:
				// Nothing but, at most, the retry's own record: no second resource.
				if h.position() != written {
					t.Fatalf("the retry appended %d events", h.position()-written)
				}
				h.expect(h.as("GET", again.Header.Get("Location"), nil, "X-Keyledger-Position", again.Header.Get("X-Keyledger-Position")), 200, "")
			}
			third := h.on(srv, h.admin.Secret, "POST", tc.path, tc.body, "Idempotency-Key", "lost-ack-"+tc.name)
			if third.Status != 201 || third.str("id") != again.str("id") || third.str("batch_id") != again.str("batch_id") {
				t.Fatalf("a later retry: %d %s", third.Status, third.Raw)
			}
		})
	}
}

// TestARoleDeletedBeforeTheRetryIsNotCreatedAgain: a role creation whose outcome
// was unknown, retried after the role was deleted, is gone (410): the retry neither
// brings the deleted role back nor creates a second one.
func TestARoleDeletedBeforeTheRetryIsNotCreatedAgain(t *testing.T) {
	h := start(t)
	proxy, _, srv := h.proxied(httpapi.Config{})
	body := map[string]any{"name": "auditors", "permissions": []string{"api_key:read"}}
	proxy.LoseReplies(eventsAcks)
	h.expect(h.on(srv, h.admin.Secret, "POST", "/v1/roles", body, "Idempotency-Key", "lost-role"), 503, "unavailable")
	proxy.LoseReplies(nil)
	roles := h.as("GET", "/v1/roles", nil, "X-Keyledger-Position", h.positionHeader()).items()
	if len(roles) != 1 {
		t.Fatalf("roles after the lost acknowledgement: %v", roles)
	}
	h.expect(h.as("DELETE", "/v1/roles/"+roles[0]["id"].(string), nil), 204, "")
	for range 2 {
		h.expect(h.on(srv, h.admin.Secret, "POST", "/v1/roles", body, "Idempotency-Key", "lost-role"), 410, "idempotent_result_gone")
	}
	if roles := h.as("GET", "/v1/roles", nil, "X-Keyledger-Position", h.positionHeader()).items(); len(roles) != 0 {
		t.Fatalf("roles after the retries: %v", roles)
	}
}
