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
