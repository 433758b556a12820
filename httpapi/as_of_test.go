package httpapi_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"
)

// TestAsOfReadsGiveTheStatesRecordedDuringAScenario: every read taken during a
// scenario is answered again, byte for byte, by the same read with as_of the
// instant it was taken, after everything changed or was deleted since.
func TestAsOfReadsGiveTheStatesRecordedDuringAScenario(t *testing.T) {
	h := start(t)
	type snapshot struct {
		path string
		at   time.Time
		body string
	}
	var seen []snapshot
	record := func(paths ...string) {
		t.Helper()
		time.Sleep(2 * time.Millisecond) // the next write is stamped later than this instant
		at := time.Now()
		for _, p := range paths {
			r := h.as("GET", p, nil, "X-Keyledger-Position", h.positionHeader())
			h.expect(r, 200, "")
			seen = append(seen, snapshot{p, at, string(r.Raw)})
		}
		time.Sleep(2 * time.Millisecond)
	}

	ws := h.workspace("prod")
	wsPath, members := "/v1/workspaces/"+ws, "/v1/workspaces/"+ws+"/members"
	bob, _ := h.subAccount("bob")
	record(wsPath, members, "/v1/accounts/"+bob)
	h.expect(h.as("PATCH", wsPath, map[string]any{"name": "production", "description": "main"}), 200, "")
	h.expect(h.as("PUT", members, map[string]any{"account_ids": []string{bob}}), 200, "")
	r := h.as("POST", wsPath+"/api-keys", map[string]any{"business_type": "search", "name": "crawler", "allowlist": []string{"10.0.0.1"}, "qps_limit": 5})
	h.expect(r, 201, "")
	key := wsPath + "/api-keys/" + r.str("id")
	role := h.role("readers", []string{"api_key:read"}, bob)
	record(wsPath, members, key, "/v1/accounts/"+bob, "/v1/roles/"+role)
	h.expect(h.as("PATCH", key, map[string]any{"allowlist": []string{"10.0.0.2"}, "qps_limit": nil}), 200, "")
	h.expect(h.as("POST", key+"/reveal", nil), 200, "")
	h.expect(h.as("PATCH", "/v1/roles/"+role, map[string]any{"name": "key-readers", "permissions": []string{"api_key:read", "workspace:read"}}), 200, "")
	h.expect(h.as("PATCH", "/v1/accounts/"+bob, map[string]any{"status": "disabled"}), 200, "")
	record(key, "/v1/accounts/"+bob, "/v1/roles/"+role)
	deletedAt := time.Now()
	h.expect(h.as("DELETE", key, nil), 204, "")
	h.expect(h.as("PUT", members, map[string]any{"account_ids": []string{}}), 200, "")
	h.expect(h.as("DELETE", "/v1/roles/"+role, nil), 204, "")
	h.expect(h.as("GET", key, nil, "X-Keyledger-Position", h.positionHeader()), 404, "api_key_not_found")

	for _, s := range seen {
		r := h.as("GET", s.path+"?as_of="+url.QueryEscape(s.at.Format(time.RFC3339Nano)), nil)
		h.expect(r, 200, "")
		if string(r.Raw) != s.body {
			t.Errorf("%s as of %s:\n got %s\nwant %s", s.path, s.at.Format(time.RFC3339Nano), r.Raw, s.body)
		}
	}
	// Before it existed, after it was deleted: not found; the future and garbage: 400.
	before := url.QueryEscape(seen[0].at.Add(-time.Hour).Format(time.RFC3339Nano))
	h.expect(h.as("GET", wsPath+"?as_of="+before, nil), 404, "workspace_not_found")
	h.expect(h.as("GET", key+"?as_of="+url.QueryEscape(time.Now().Format(time.RFC3339Nano)), nil), 404, "api_key_not_found")
	h.expect(h.as("GET", key+"?as_of="+url.QueryEscape(deletedAt.Format(time.RFC3339Nano)), nil), 200, "")
	h.expect(h.as("GET", wsPath+"?as_of="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), nil), 400, "invalid_input")
	h.expect(h.as("GET", wsPath+"?as_of=yesterday", nil), 400, "invalid_input")
}

// positionHeader is the end of the log now, to wait for on a read.
func (h *harness) positionHeader() string {
	h.t.Helper()
	return strconv.FormatUint(h.position(), 10)
}
