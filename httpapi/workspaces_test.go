package httpapi_test

import (
	"fmt"
	"testing"
)

func TestWorkspaces(t *testing.T) {
	h := start(t)

	r := h.as("POST", "/v1/workspaces", map[string]any{"name": " prod ", "description": "main"})
	h.expect(r, 201, "")
	ws := r.str("id")
	if r.Header.Get("Location") != "/v1/workspaces/"+ws || r.str("name") != "prod" || r.Header.Get("X-Keyledger-Position") == "" {
		t.Fatalf("create: %v %s", r.Header, r.Raw)
	}
	pos := r.Header.Get("X-Keyledger-Position")
	etag := r.Header.Get("ETag")

	// Read-your-writes: the list waits for the position of the create.
	r = h.as("GET", "/v1/workspaces", nil, "X-Keyledger-Position", pos)
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["id"] != ws {
		t.Fatalf("list: %s", r.Raw)
	}
	r = h.as("GET", "/v1/workspaces/"+ws, nil, "X-Keyledger-Position", pos)
	h.expect(r, 200, "")
	if r.Header.Get("ETag") != etag || r.str("description") != "main" {
		t.Fatalf("get: %v %s", r.Header, r.Raw)
	}

	// Rename with If-Match; a stale If-Match is 412 and writes nothing.
	r = h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "production"}, "If-Match", etag)
	h.expect(r, 200, "")
	if r.str("name") != "production" || r.str("description") != "main" || r.Header.Get("ETag") == etag {
		t.Fatalf("patch: %v %s", r.Header, r.Raw)
	}
	before := h.position()
	h.expect(h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "again"}, "If-Match", etag), 412, "precondition_failed")
	h.expect(h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "again"}, "If-Match", "yesterday"), 412, "precondition_failed")
	h.expect(h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": ""}), 400, "invalid_input")
	if h.position() != before {
		t.Fatal("a refused change wrote to the log")
	}
	r = h.as("GET", "/v1/workspaces/"+ws, nil, "X-Keyledger-Position", fmt.Sprint(before))
	if r.str("name") != "production" {
		t.Fatalf("after rename: %s", r.Raw)
	}

	// Pagination.
	for i := 0; i < 3; i++ {
		h.workspace(fmt.Sprintf("w%d", i))
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		r = h.as("GET", "/v1/workspaces?limit=3&cursor="+cursor, nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
		h.expect(r, 200, "")
		for _, it := range r.items() {
			seen[it["id"].(string)] = true
		}
		cursor = r.str("next_cursor")
		if cursor == "" {
			if pages != 1 {
				t.Fatalf("4 workspaces in pages of 3 took %d pages", pages+1)
			}
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("saw %d workspaces", len(seen))
	}
	h.expect(h.as("GET", "/v1/workspaces?limit=0", nil), 400, "invalid_input")
	h.expect(h.as("GET", "/v1/workspaces?cursor=@@@", nil), 400, "invalid_cursor")

	// Not found: unknown, malformed, and of another organization (never 403).
	h.expect(h.as("GET", "/v1/workspaces/ws_01M8GTJZ02Q4X6XX8G0M176EHP", nil), 404, "workspace_not_found")
	h.expect(h.as("GET", "/v1/workspaces/nonsense", nil), 404, "workspace_not_found")
	other := h.bootstrap("other")
	h.expect(h.call(other.Secret, "GET", "/v1/workspaces/"+ws, nil), 404, "workspace_not_found")
	h.expect(h.call(other.Secret, "PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "mine"}), 404, "workspace_not_found")
	r = h.call(other.Secret, "GET", "/v1/workspaces", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if len(r.items()) != 0 {
		t.Fatalf("another organization lists %s", r.Raw)
	}
}

func TestAccountsAndMembers(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")

	r := h.as("POST", "/v1/accounts", map[string]any{"name": "alice"})
	h.expect(r, 201, "")
	alice := r.str("id")
	bob := h.as("POST", "/v1/accounts", map[string]any{"name": "bob"}).str("id")
	h.expect(h.as("POST", "/v1/accounts", map[string]any{"name": "alice"}), 409, "name_taken")
	h.expect(h.as("POST", "/v1/accounts", map[string]any{}), 400, "invalid_input")

	r = h.as("GET", "/v1/accounts", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if items := r.items(); len(items) != 3 || items[0]["primary"] != true {
		t.Fatalf("accounts: %s", r.Raw)
	}

	r = h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice, bob}})
	h.expect(r, 200, "")
	before := h.position()
	// Save again with one change: exactly two events (bob out, primary in).
	r = h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice, h.admin.AccountID}})
	h.expect(r, 200, "")
	if after := h.position(); after != before+2 {
		t.Fatalf("save wrote %d events, want 2", after-before)
	}
	// Saving the same set writes nothing.
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{h.admin.AccountID, alice}}), 200, "")
	if h.position() != before+2 {
		t.Fatal("an unchanged member set wrote events")
	}
	r = h.as("GET", "/v1/workspaces/"+ws+"/members", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 2 || items[0]["account_id"] == bob || items[1]["account_id"] == bob {
		t.Fatalf("members: %s", r.Raw)
	}

	other := h.bootstrap("other")
	before = h.position()
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{other.AccountID}}), 400, "invalid_input")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{}), 400, "invalid_input")
	h.expect(h.call(other.Secret, "GET", "/v1/workspaces/"+ws+"/members", nil), 404, "workspace_not_found")
	h.expect(h.call(other.Secret, "PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}), 404, "workspace_not_found")
	if h.position() != before {
		t.Fatal("refused member changes wrote events")
	}
}
