package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/eventstore"
	"github.com/keyledger/keyledger/httpapi"
)

// TestAStalledLogIsA503NeverAWrongAnswer: an instance whose loads of aggregates
// stall answers 503 with Retry-After, never 401 for a valid access key nor 404 for
// an existing workspace.
func TestAStalledLogIsA503NeverAWrongAnswer(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv := h.proxied(httpapi.Config{})
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
	proxy, _, a := h.proxied(httpapi.Config{})
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
	// The workspace's end cannot be read through this instance's connection (asked
	// of the stream's leader, the subject in the request's body); the organization's
	// can, so the request is authenticated and reaches the write's own check.
	proxy.StallWhere(func(subject string, payload []byte) bool {
		return subject == "$JS.API.STREAM.MSG.GET."+eventstore.EventsStream &&
			bytes.Contains(payload, []byte(eventstore.Subject(domain.AggregateWorkspace, ws)))
	})
	patch := h.on(a, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), map[string]any{"note": "x"})
	h.expect(patch, 503, "unavailable")
	proxy.Stall(nil)
	h.expect(h.on(a, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), map[string]any{"note": "x"}), 200, "")
}

// TestAnAccessKeyNotYetAppliedHereIsNot401: an access key created on another instance
// and used here before this instance's index has applied it is not refused as
// unknown: the instance answers once its index holds the log as it stood when the
// request came, and 503 while it cannot, never 401.
func TestAnAccessKeyNotYetAppliedHereIsNot401(t *testing.T) {
	h := start(t)
	proxy, _, b := h.proxied(httpapi.Config{})
	// This instance receives no access key creation from now on.
	proxy.LoseReplies(func(payload []byte) bool { return bytes.Contains(payload, []byte(`"access_key_id"`)) })
	_, secret := h.subAccount("alice")
	r := h.on(b, secret, "GET", "/v1/me", nil)
	h.expect(r, 503, "")
	proxy.LoseReplies(nil)
	h.workspace("next") // an event after the lost ones: the consumer sees the gap
	h.eventually("the new access key accepted on this instance", func() bool {
		r := h.on(b, secret, "GET", "/v1/me", nil)
		if r.Status == 401 {
			t.Fatalf("the new access key on this instance: %s", r.Raw)
		}
		return r.Status == 200
	})
}

// TestAStalledAuditStreamIsNotAnEmptyPage: refused calls the audit stream holds but
// that cannot be read (its consumer's pulls stall) are a 503, never a page without
// them.
func TestAStalledAuditStreamIsNotAnEmptyPage(t *testing.T) {
	h := start(t)
	_, bobSecret := h.subAccount("bob")
	h.expect(h.call(bobSecret, "GET", "/v1/audit/calls", nil), 403, "forbidden")
	h.eventually("the refusal kept", func() bool { return len(h.as("GET", "/v1/audit/calls", nil).items()) > 0 })
	proxy, _, srv := h.proxied(httpapi.Config{})
	proxy.Stall(func(subject string) bool {
		return strings.HasPrefix(subject, "$JS.API.CONSUMER.MSG.NEXT.KEYLEDGER_AUDIT.")
	})
	h.expect(h.on(srv, h.admin.Secret, "GET", "/v1/audit/calls", nil), 503, "unavailable")
	proxy.Stall(nil)
	if r := h.on(srv, h.admin.Secret, "GET", "/v1/audit/calls", nil); r.Status != 200 || len(r.items()) != 1 {
		t.Fatalf("after the stall: %d %s", r.Status, r.Raw)
	}
}

// TestARevocationNotAppliedHereStopsThisInstancesDecisions: an instance that
// accepted a key's deletion but whose index does not apply it within the position
// wait (its consumer gets nothing) answers verifications 503 until it has, never
// VALID for the deleted key.
func TestARevocationNotAppliedHereStopsThisInstancesDecisions(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, svc, b := h.proxied(httpapi.Config{PositionWait: 300 * time.Millisecond})
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas", "allowlist": "10.0.0.0/8"})
	h.expect(key, 201, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Index().WaitFor(ctx, h.position()); err != nil {
		t.Fatal(err)
	}
	h.decision(h.verify(b, key.str("secret"), ws, "maas", "10.0.0.1"), "VALID", true)
	// From now on this instance receives no deletion (nor anything after it).
	proxy.LoseReplies(func(payload []byte) bool {
		return bytes.Contains(payload, []byte(`"key_id"`)) && !bytes.Contains(payload, []byte(`"business_type"`))
	})
	h.expect(h.on(b, h.admin.Secret, "DELETE", "/v1/workspaces/"+ws+"/api-keys/"+key.str("id"), nil), 204, "")
	h.expect(h.verify(b, key.str("secret"), ws, "maas", "10.0.0.1"), 503, "not_ready")
	proxy.LoseReplies(nil)
	h.workspace("next") // an event after the lost one: the consumer sees the gap
	h.eventually("the deletion applied on this instance", func() bool {
		r := h.verify(b, key.str("secret"), ws, "maas", "10.0.0.1")
		if r.str("code") == "VALID" {
			t.Fatalf("after the deletion: %s", r.Raw)
		}
		return r.Status == 200 && r.str("code") == "DELETED"
	})
}

// TestWritesQueuedBehindAStalledOneGiveUpInTime: while the log does not take a
// workspace's appends, the writes queued for that workspace answer 503 within the
// write timeout of their own, not one write timeout after another.
func TestWritesQueuedBehindAStalledOneGiveUpInTime(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv := h.proxied(httpapi.Config{})
	h.expect(h.on(srv, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws, map[string]any{"description": "loaded"}), 200, "")
	proxy.Stall(func(subject string) bool { return subject == eventstore.Subject(domain.AggregateWorkspace, ws) })
	defer proxy.Stall(nil)
	const writes = 12 // one write timeout (1 s) each, one after another, would take 12 s
	started := time.Now()
	answers := make(chan response, writes)
	for i := range writes {
		go func() {
			answers <- h.on(srv, h.admin.Secret, "PATCH", "/v1/workspaces/"+ws, map[string]any{"description": fmt.Sprint("d", i)})
		}()
	}
	for range writes {
		h.expect(<-answers, 503, "")
	}
	if took := time.Since(started); took > 9*time.Second { // about 3 s expected; 12 s one after another
		t.Fatalf("%d writes queued behind a stalled one answered after %v", writes, took)
	}
}

// TestAStalledBatchAppendGivesUpAtTheWriteTimeout: an append of several events
// waits for the log as long as the write timeout (1 s here), not the NATS client's
// own default (5 s), before its 503.
func TestAStalledBatchAppendGivesUpAtTheWriteTimeout(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	proxy, _, srv := h.proxied(httpapi.Config{})
	proxy.Stall(func(subject string) bool { return subject == eventstore.Subject(domain.AggregateWorkspace, ws) })
	defer proxy.Stall(nil)
	started := time.Now()
	r := h.on(srv, h.admin.Secret, "POST", "/v1/workspaces/"+ws+"/api-keys/batch", map[string]any{"count": 2, "naming": map[string]any{"prefix": "s"}})
	h.expect(r, 503, "")
	if took := time.Since(started); took > 3500*time.Millisecond {
		t.Fatalf("a stalled batch append answered after %v", took)
	}
}
