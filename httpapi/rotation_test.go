package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyledger/keyledger/httpapi"
)

// TestAccessKeyRotation: every account's AK rotates, the primary's included; the
// old secret stops at once or at the end of its grace period, on every instance,
// for verification and authentication alike, and a second rotation during the
// grace ends the first old secret at once.
func TestAccessKeyRotation(t *testing.T) {
	h := start(t)
	_, second := h.instance(httpapi.Config{})
	ws := h.workspace("prod")
	alice, s1 := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")
	rotate := "/v1/accounts/" + alice + "/access-key/rotate"
	all := []string{httpapi.HeaderConsistency, "all-instances"}

	// A rotation based on an older version of the account is refused, and changes
	// nothing; one based on the current version goes through.
	current := h.as("GET", "/v1/accounts/"+alice, nil, httpapi.HeaderPosition, fmt.Sprint(h.position()))
	h.expect(h.as("POST", rotate, map[string]any{"grace_seconds": 3600}, "If-Match", `"stale"`), 412, "precondition_failed")
	r := h.as("POST", rotate, map[string]any{"grace_seconds": 3600}, append(all, "If-Match", current.Header.Get("ETag"))...)
	h.expect(r, 200, "")
	s2 := r.str("secret")
	prev, _ := r.Body["previous"].(map[string]any)
	if s2 == "" || s2 == s1 || prev == nil || prev["ends_at"] == nil || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotation: %s", r.Raw)
	}
	first := prev["id"]
	for _, s := range []string{s1, s2} {
		h.decision(h.verify(second, s, ws, "maas", "10.0.0.1"), "VALID", true)
		h.expect(h.call(s, "GET", "/v1/me", nil), 200, "")
		h.expect(h.on(second, s, "GET", "/v1/me", nil), 200, "")
	}
	acc := h.as("GET", "/v1/accounts/"+alice, nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	ak, _ := acc.Body["access_key"].(map[string]any)
	if p, _ := ak["previous"].(map[string]any); p == nil || p["id"] != first || p["ends_at"] != prev["ends_at"] {
		t.Fatalf("the account shows the old key and its end: %s", acc.Raw)
	}

	// A second rotation during the grace ends the first old secret at once; this
	// one has no grace: the second secret stops at once too.
	r = h.as("POST", rotate, map[string]any{}, all...)
	h.expect(r, 200, "")
	s3 := r.str("secret")
	if r.Body["previous"] != nil {
		t.Fatalf("no grace, no previous key: %s", r.Raw)
	}
	for _, s := range []string{s1, s2} {
		h.decision(h.verify(second, s, ws, "maas", "10.0.0.1"), "DELETED", false)
		h.expect(h.call(s, "GET", "/v1/me", nil), 401, "unauthenticated")
		h.expect(h.on(second, s, "GET", "/v1/me", nil), 401, "unauthenticated")
	}
	h.decision(h.verify(second, s3, ws, "maas", "10.0.0.1"), "VALID", true)

	// A grace period ends like a deletion, without any event.
	r = h.as("POST", rotate, map[string]any{"grace_seconds": 3}, all...)
	h.expect(r, 200, "")
	s4 := r.str("secret")
	h.decision(h.verify(second, s3, ws, "maas", "10.0.0.1"), "VALID", true)
	ends, err := time.Parse(time.RFC3339Nano, r.Body["previous"].(map[string]any)["ends_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	logEnd := h.position()
	time.Sleep(time.Until(ends) + 50*time.Millisecond)
	h.decision(h.verify(second, s3, ws, "maas", "10.0.0.1"), "DELETED", false)
	h.decision(h.verify(nil, s3, ws, "maas", "10.0.0.1"), "DELETED", false)
	h.expect(h.call(s3, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.on(second, s3, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.call(s4, "GET", "/v1/me", nil), 200, "")
	if now := h.position(); now != logEnd {
		t.Fatalf("the grace's end appended events: the log went from %d to %d", logEnd, now)
	}
	// One set of AK: disabling and enabling it again never brings an old secret back.
	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "disabled"}, all...), 200, "")
	h.decision(h.verify(second, s4, ws, "maas", "10.0.0.1"), "DISABLED", false)
	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "enabled"}, all...), 200, "")
	h.decision(h.verify(second, s3, ws, "maas", "10.0.0.1"), "DELETED", false)
	h.decision(h.verify(second, s4, ws, "maas", "10.0.0.1"), "VALID", true)
	acc = h.as("GET", "/v1/accounts/"+alice, nil)
	if ak := acc.Body["access_key"].(map[string]any); ak["previous"] != nil {
		t.Fatalf("an ended grace is not shown: %s", acc.Raw)
	}
	during := ends.Add(-time.Second).Format(time.RFC3339Nano)
	acc = h.as("GET", "/v1/accounts/"+alice+"?as_of="+during, nil)
	if p, _ := acc.Body["access_key"].(map[string]any)["previous"].(map[string]any); p == nil || p["ends_at"] != r.Body["previous"].(map[string]any)["ends_at"] {
		t.Fatalf("the account as of its grace shows the old key: %s", acc.Raw)
	}

	// Who may rotate, and within what.
	h.expect(h.call(s4, "POST", rotate, map[string]any{}), 403, "forbidden")
	h.role("rotators", []string{"access_key:update"}, alice)
	r = h.call(s4, "POST", rotate, map[string]any{})
	h.expect(r, 200, "")
	s5 := r.str("secret")
	h.expect(h.call(s5, "POST", "/v1/accounts/"+h.admin.AccountID+"/access-key/rotate", map[string]any{}), 403, "forbidden")
	before := h.position()
	for _, g := range []any{-1, 86401, 1e12, "1h"} {
		h.expect(h.as("POST", rotate, map[string]any{"grace_seconds": g}), 400, "invalid_input")
	}
	h.expect(h.as("POST", "/v1/accounts/acct_01JD0000000000000000000000/access-key/rotate", map[string]any{}), 404, "account_not_found")
	if h.position() != before {
		t.Fatal("a refused rotation wrote to the log")
	}

	// The primary's own key: the old secret stops on the very next request.
	r = h.as("POST", "/v1/accounts/"+h.admin.AccountID+"/access-key/rotate", map[string]any{}, all...)
	h.expect(r, 200, "")
	old := h.admin.Secret
	h.admin.Secret = r.str("secret")
	h.expect(h.call(old, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.decision(h.verify(second, old, ws, "maas", "10.0.0.1"), "DELETED", false)
	h.expect(h.as("GET", "/v1/me", nil), 200, "")
	h.decision(h.verify(second, h.admin.Secret, ws, "maas", "10.0.0.1"), "VALID", true)

	// The history shows the rotations, never the new secrets' hashes.
	au := h.as("GET", "/v1/audit?limit=500", nil, httpapi.HeaderPosition, r.Header.Get(httpapi.HeaderPosition))
	if h.expect(au, 200, ""); !strings.Contains(string(au.Raw), "rotated") || strings.Contains(string(au.Raw), "secret_hash") {
		t.Fatalf("audit: %s", au.Raw)
	}
}

// TestASecretInItsGraceCannotManageTheKey: after a rotation with a grace period,
// the old secret keeps its holder working but cannot rotate, disable or delete the
// key: whoever holds a leaked secret must not lock the owner out (the primary's
// key cannot be recovered by anyone else).
func TestASecretInItsGraceCannotManageTheKey(t *testing.T) {
	h := start(t)
	alice, a0 := h.subAccount("alice")
	bob, _ := h.subAccount("bob")
	h.expect(h.as("DELETE", "/v1/accounts/"+bob+"/access-key", nil), 204, "")
	h.role("keys", []string{"access_key:update", "access_key:delete"}, alice)
	primary := "/v1/accounts/" + h.admin.AccountID + "/access-key"
	r := h.as("POST", primary+"/rotate", map[string]any{"grace_seconds": 3600})
	h.expect(r, 200, "")
	current, old := r.str("secret"), h.admin.Secret
	own := "/v1/accounts/" + alice + "/access-key"
	r = h.call(a0, "POST", own+"/rotate", map[string]any{"grace_seconds": 3600})
	h.expect(r, 200, "")
	aliceCurrent := r.str("secret")

	for _, c := range []struct{ secret, path string }{{old, primary}, {a0, own}} {
		h.expect(h.call(c.secret, "GET", "/v1/me", nil), 200, "")
		h.expect(h.call(c.secret, "POST", c.path+"/rotate", map[string]any{}), 403, "previous_secret")
		h.expect(h.call(c.secret, "PATCH", c.path, map[string]any{"status": "disabled"}), 403, "previous_secret")
		h.expect(h.call(c.secret, "DELETE", c.path, nil), 403, "previous_secret")
	}
	h.expect(h.call(old, "POST", own+"/rotate", map[string]any{}), 403, "previous_secret")
	h.expect(h.call(old, "POST", "/v1/accounts/"+bob+"/access-key", nil), 403, "previous_secret")
	// The current secrets still manage their keys.
	h.expect(h.call(current, "PATCH", own, map[string]any{"status": "disabled"}), 200, "")
	h.expect(h.call(aliceCurrent, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.call(current, "POST", primary+"/rotate", map[string]any{}), 200, "")
}
