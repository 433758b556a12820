package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzHTTP sends generated bodies, headers and query strings to every route of the
// API as the primary account (the caller who may do the most). Whatever arrives,
// the answer is never a 5xx, the server stays up, and a refused request appends
// nothing to the log. The corpus is in testdata/fuzz/FuzzHTTP; `go test` replays it.
func FuzzHTTP(f *testing.F) {
	h := start(f)
	ws := h.workspace("fuzz")
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search"}).str("id")
	acct := h.as("POST", "/v1/accounts", map[string]any{"name": "fuzzed"}).str("id")
	role := h.role("fuzzed", []string{"api_key:read"})
	routes := []struct{ method, path string }{
		{"POST", "/v1/workspaces"}, {"GET", "/v1/workspaces"}, {"GET", "/v1/workspaces/" + ws}, {"PATCH", "/v1/workspaces/" + ws},
		{"POST", "/v1/accounts"}, {"GET", "/v1/accounts"}, {"GET", "/v1/accounts/" + acct}, {"PATCH", "/v1/accounts/" + acct},
		{"POST", "/v1/accounts/" + acct + "/access-key"}, {"PATCH", "/v1/accounts/" + acct + "/access-key"},
		{"GET", "/v1/me"}, {"POST", "/v1/roles"}, {"GET", "/v1/roles"}, {"GET", "/v1/roles/" + role}, {"PATCH", "/v1/roles/" + role},
		{"GET", "/v1/workspaces/" + ws + "/members"}, {"PUT", "/v1/workspaces/" + ws + "/members"},
		{"POST", "/v1/workspaces/" + ws + "/api-keys"}, {"POST", "/v1/workspaces/" + ws + "/api-keys/batch"},
		{"GET", "/v1/workspaces/" + ws + "/api-keys"}, {"GET", "/v1/workspaces/" + ws + "/api-keys/" + key},
		{"PATCH", "/v1/workspaces/" + ws + "/api-keys/" + key}, {"POST", "/v1/workspaces/" + ws + "/api-keys/" + key + "/reveal"},
		{"POST", "/v1/verify"}, {"GET", "/v1/cluster/applied"},
	}
	for i, seed := range []struct{ body, header, query string }{
		{`{"name":"a"}`, "", ""},
		{`{"business_type":"maas","allowlist":"1.2.3.4, ::1"}`, "Idempotency-Key: k1", ""},
		{`{"count":2,"naming":{"prefix":"p"},"rate_limit":{"mode":"individual","qps_list":[1,2]}}`, "", ""},
		{`{"status":"disabled"}`, `If-Match: "x"`, ""},
		{`{"account_ids":[]}`, "Content-Type: text/plain", ""},
		{`{"permissions":["api_key:read"],"users":null}`, "", "cursor=Zm9v&limit=2"},
		{`{"credential":"kls_x","source_ip":"1.2.3.4%eth0","workspace_id":"ws_x","product":"maas"}`, "", "position=1"},
		{"\xff\xfe", "X-Request-Id: \xff", "fields=name;x"},
	} {
		f.Add(uint8(i), []byte(seed.body), seed.header, seed.query)
	}
	position := func(t *testing.T) uint64 {
		p, err := h.svc.Store().Position(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte, header, query string) {
		rt := routes[int(route)%len(routes)]
		req, err := http.NewRequest(rt.method, h.http.URL+rt.path+"?"+query, bytes.NewReader(body))
		if err != nil {
			return // not a request a client library can even send
		}
		req.Header.Set("Authorization", "Bearer "+h.admin.Secret)
		if rt.path == "/v1/verify" {
			req.Header.Set("Authorization", "Bearer "+gatewayToken)
		}
		req.Header.Set("Content-Type", "application/json")
		if name, value, ok := strings.Cut(header, ":"); ok && name != "" && name != "Authorization" {
			req.Header[strings.TrimSpace(name)] = []string{strings.TrimSpace(value)}
		}
		before := position(t)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return // refused by the client side (an invalid header value)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s?%q with %q and %q: %d %s", rt.method, rt.path, query, body, header, res.StatusCode, raw)
		}
		if res.StatusCode >= 400 && position(t) != before {
			t.Fatalf("%s %s refused with %d but appended to the log: %s", rt.method, rt.path, res.StatusCode, raw)
		}
		if alive, err := http.Get(h.http.URL + "/healthz"); err != nil || alive.StatusCode != 200 {
			t.Fatalf("the server is down after %s %s: %v", rt.method, rt.path, err)
		} else {
			alive.Body.Close()
		}
	})
}
