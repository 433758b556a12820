package httpapi_test

import (
	"strings"
	"testing"

	"github.com/keyledger/keyledger/httpapi"
)

// TestAStalledLogIsA503NeverAWrongAnswer: an instance whose loads of aggregates
// stall answers 503 with Retry-After, never 401 for a valid access key nor 404 for
// an existing workspace.
func TestAStalledLogIsA503NeverAWrongAnswer(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy := h.nats.StartProxy(t)
	svc, srv := h.instanceOn(proxy.Connect(t), httpapi.Config{})
	h.waitReady(svc)
	proxy.Stall(func(subject string) bool { return subject == "$JS.API.DIRECT.GET.KEYLEDGER_EVENTS" })
	for _, path := range []string{"/v1/me", "/v1/workspaces/" + ws} {
		r := h.on(srv, h.admin.Secret, "GET", path, nil)
		h.expect(r, 503, "unavailable")
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: 503 without Retry-After", path)
		}
	}
	proxy.Stall(nil)
	h.expect(h.on(srv, h.admin.Secret, "GET", "/v1/workspaces/"+ws, nil), 200, "")
}

// TestAnInstanceNotCaughtUpIsNotReady: until its credential index has caught up with
// the log, an instance answers management calls 503 not_ready, never 401.
func TestAnInstanceNotCaughtUpIsNotReady(t *testing.T) {
	h := start(t)
	proxy := h.nats.StartProxy(t)
	proxy.Stall(func(subject string) bool { return strings.HasPrefix(subject, "$JS.API.CONSUMER.CREATE.") })
	_, srv := h.instanceOn(proxy.Connect(t), httpapi.Config{})
	r := h.on(srv, h.admin.Secret, "GET", "/v1/me", nil)
	h.expect(r, 503, "not_ready")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	proxy.Stall(nil)
}

// TestAWriteIsNeverDecidedOnAStaleCache: an instance whose cached workspace is
// behind the log (another instance wrote since) decides neither "nothing to do" nor a
// refusal on it: a Save of members that looks like no change on the stale state
// revokes the member added elsewhere, and when the log cannot say whether the cache
// is current, the answer is a 503, not a 404 for a key created elsewhere.
func TestAWriteIsNeverDecidedOnAStaleCache(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	u1, _ := h.subAccount("u1")
	u2, _ := h.subAccount("u2")
	proxy := h.nats.StartProxy(t)
	svc, a := h.instanceOn(proxy.Connect(t), httpapi.Config{})
	h.waitReady(svc)
	members := "/v1/workspaces/" + ws + "/members"
	h.expect(h.on(a, h.admin.Secret, "PUT", members, map[string]any{"account_ids": []string{u1}}), 200, "")
	h.expect(h.as("PUT", members, map[string]any{"account_ids": []string{u1, u2}}), 200, "")
	r := h.on(a, h.admin.Secret, "PUT", members, map[string]any{"account_ids": []string{u1}})
	h.expect(r, 200, "")
	list := h.as("GET", members, nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position"))
	h.expect(list, 200, "")
	if strings.Contains(string(list.Raw), u2) {
		t.Fatalf("u2 is still a member after a Save without it: %s", list.Raw)
	}

	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(key, 201, "")
	// The workspace's end cannot be read through this instance's connection.
	proxy.Stall(func(subject string) bool {
		return strings.HasPrefix(subject, "$JS.API.DIRECT.GET.") && strings.HasSuffix(subject, ws)
	})
	patch := h.on(a, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), map[string]any{"note": "x"})
	h.expect(patch, 503, "unavailable")
	proxy.Stall(nil)
	h.expect(h.on(a, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), map[string]any{"note": "x"}), 200, "")
}
