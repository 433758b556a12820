package httpapi_test

import (
	"testing"
)

// TestResourcesSayWhoCreatedAndLastChangedThem: keys, accounts, access keys and
// roles carry created_by and updated_by (id and name), the same in a write's answer
// and in a read, rebuilt views included.
func TestResourcesSayWhoCreatedAndLastChangedThem(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	bob, bobSecret := h.subAccount("bob")
	h.role("key-makers", []string{"api_key:create", "api_key:read"}, bob)
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{bob}}), 200, "")

	by := func(r response, field string) string {
		t.Helper()
		ref, _ := r.Body[field].(map[string]any)
		id, _ := ref["id"].(string)
		name, _ := ref["name"].(string)
		return id + "/" + name
	}
	admin, bobRef := h.admin.AccountID+"/admin", bob+"/bob"

	created := h.call(bobSecret, "POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search", "name": "k"})
	h.expect(created, 201, "")
	if by(created, "created_by") != bobRef || by(created, "updated_by") != bobRef {
		t.Fatalf("create answer: %s", created.Raw)
	}
	key := "/v1/workspaces/" + ws + "/api-keys/" + created.str("id")
	edited := h.as("PATCH", key, map[string]any{"note": "checked"})
	h.expect(edited, 200, "")
	read := h.as("GET", key, nil, "X-Keyledger-Position", edited.Header.Get("X-Keyledger-Position"))
	for _, r := range []response{edited, read} {
		if by(r, "created_by") != bobRef || by(r, "updated_by") != admin {
			t.Fatalf("after an edit: %s", r.Raw)
		}
	}

	acc := h.as("GET", "/v1/accounts/"+bob, nil, "X-Keyledger-Position", h.positionHeader())
	ak, _ := acc.Body["access_key"].(map[string]any)
	if by(acc, "created_by") != admin || by(acc, "updated_by") != admin || ak["created_by"].(map[string]any)["name"] != "admin" {
		t.Fatalf("account: %s", acc.Raw)
	}
	roles := h.as("GET", "/v1/roles", nil, "X-Keyledger-Position", h.positionHeader())
	if r := roles.items()[0]; r["created_by"].(map[string]any)["id"] != h.admin.AccountID {
		t.Fatalf("role: %s", roles.Raw)
	}
	primary := h.as("GET", "/v1/accounts/"+h.admin.AccountID, nil)
	if ref := primary.Body["created_by"].(map[string]any); ref["id"] != "system:bootstrap" || ref["name"] != "" {
		t.Fatalf("the primary account was created by the bootstrap: %s", primary.Raw)
	}
}
