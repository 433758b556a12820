package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/httpapi"
)

func TestCreateKeys(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"

	r := h.as("POST", base, map[string]any{"business_type": "maas", "allowlist": "1.2.3.4, 10.0.0.0/8, 2001:db8::/32", "note": "gateway A"})
	h.expect(r, 201, "")
	secret := r.str("secret")
	if c, err := domain.ParseCredential(secret); err != nil || c.Kind() != domain.KindMaaSKey {
		t.Fatalf("secret %q: %v", secret, err)
	}
	if r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Location"), base+"/key_") ||
		fmt.Sprint(r.Body["allowlist"]) != "[1.2.3.4 10.0.0.0/8 2001:db8::/32]" || r.Body["name"] != nil {
		t.Fatalf("maas key: %v %s", r.Header, r.Raw)
	}
	maas := r.str("id")

	r = h.as("POST", base, map[string]any{"business_type": "search"})
	h.expect(r, 201, "")
	if r.str("name") != "search-key-1" || r.Body["qps_limit"] != nil || !strings.HasPrefix(r.str("secret"), "kls_") {
		t.Fatalf("default search key: %s", r.Raw)
	}
	r = h.as("POST", base, map[string]any{"business_type": "search", "name": "crawler", "qps_limit": 20, "allowlist": []string{"::1"}})
	h.expect(r, 201, "")
	if r.Body["qps_limit"] != float64(20) {
		t.Fatalf("search key: %s", r.Raw)
	}
	h.expect(h.as("POST", base, map[string]any{"business_type": "search", "name": "crawler"}), 409, "name_taken")

	// Batches: by prefix with uniform QPS, by names with individual QPS.
	r = h.as("POST", base+"/batch", map[string]any{"count": 3, "naming": map[string]any{"prefix": "bulk"},
		"allowlist": []string{"192.168.0.0/16"}, "rate_limit": map[string]any{"mode": "uniform", "qps": 7}})
	h.expect(r, 201, "")
	items := r.items()
	if len(items) != 3 || items[2]["name"] != "bulk-3" || items[0]["qps_limit"] != float64(7) || items[1]["batch_id"] != r.str("batch_id") {
		t.Fatalf("prefix batch: %s", r.Raw)
	}
	r = h.as("POST", base+"/batch", map[string]any{"count": 2, "naming": map[string]any{"names": []string{"x", "y"}},
		"rate_limit": map[string]any{"mode": "individual", "qps_list": []int{1, 2}}})
	h.expect(r, 201, "")
	if items := r.items(); items[1]["name"] != "y" || items[1]["qps_limit"] != float64(2) {
		t.Fatalf("names batch: %s", r.Raw)
	}
	// The batch's Location lists its keys and only them.
	listed := h.as("GET", r.Header.Get("Location"), nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position"))
	h.expect(listed, 200, "")
	if got := listed.items(); len(got) != 2 || got[0]["batch_id"] != r.str("batch_id") || got[1]["batch_id"] != r.str("batch_id") {
		t.Fatalf("the batch's Location: %s", listed.Raw)
	}
	h.expect(h.as("GET", base+"?batch_id=nonsense", nil), 400, "invalid_input")

	// A batch with one clashing name creates nothing.
	before := h.position()
	h.expect(h.as("POST", base+"/batch", map[string]any{"count": 2, "naming": map[string]any{"names": []string{"z", "crawler"}}}), 409, "name_taken")
	for _, bad := range []map[string]any{
		{"count": 0, "naming": map[string]any{"prefix": "p"}},
		{"count": 1001, "naming": map[string]any{"prefix": "p"}},
		{"count": 2, "naming": map[string]any{"names": []string{"a"}}},
		{"count": 2, "naming": map[string]any{"names": []string{"a", "a"}}},
		{"count": 2, "naming": map[string]any{"prefix": "p", "names": []string{"a", "b"}}},
		{"count": 2, "naming": map[string]any{"prefix": "p", "names": ""}}, // names given, as a string of none
		{"count": 2, "naming": map[string]any{"prefix": "p", "names": ","}},
		{"count": 2},
		{"count": 2, "naming": map[string]any{"prefix": "p"}, "rate_limit": map[string]any{"mode": "individual", "qps_list": []int{1}}},
		{"count": 2, "naming": map[string]any{"prefix": "p"}, "rate_limit": map[string]any{"mode": "uniform"}},
		{"count": 2, "naming": map[string]any{"prefix": "p"}, "rate_limit": map[string]any{"mode": "fast", "qps": 1}},
		{"count": 2, "naming": map[string]any{"prefix": "p"}, "rate_limit": map[string]any{"qps": 1}},
		{"count": 2, "naming": map[string]any{"prefix": "p"}, "allowlist": "1.2.3.4, nope"},
	} {
		h.expect(h.as("POST", base+"/batch", bad), 400, "invalid_input")
	}
	for _, bad := range []map[string]any{
		{"business_type": "chat"},
		{},
		{"business_type": "maas", "qps_limit": 5},
		{"business_type": "maas", "name": "x"},
		{"business_type": "search", "qps_limit": 0},
		{"business_type": "search", "name": strings.Repeat("n", 65)},
		{"business_type": "maas", "note": strings.Repeat("n", 257)},
		{"business_type": "maas", "allowlist": []string{"1.2.3.4", "1.2.3.4/32"}},
	} {
		h.expect(h.as("POST", base, bad), 400, "invalid_input")
	}
	if h.position() != before {
		t.Fatal("refused creations wrote to the log")
	}
	h.expect(h.as("POST", "/v1/workspaces/ws_01M8GTJZ02Q4X6XX8G0M176EHP/api-keys", map[string]any{"business_type": "maas"}), 404, "workspace_not_found")
	_ = maas
}

func TestListKeys(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"
	h.expect(h.as("POST", base, map[string]any{"business_type": "maas"}), 201, "")
	r := h.as("POST", base+"/batch", map[string]any{"count": 5, "naming": map[string]any{"prefix": "s"}})
	h.expect(r, 201, "")
	pos := r.Header.Get("X-Keyledger-Position")

	r = h.as("GET", base+"?business_type=search&limit=2&fields=name,masked_secret", nil, "X-Keyledger-Position", pos)
	h.expect(r, 200, "")
	items := r.items()
	if len(items) != 2 || len(items[0]) != 3 || items[0]["name"] != "s-5" || r.str("next_cursor") == "" {
		t.Fatalf("first page: %s", r.Raw)
	}
	if m := items[0]["masked_secret"].(string); !strings.HasPrefix(m, "kls_") || !strings.Contains(m, "…") || len(m) > 20 {
		t.Fatalf("masked %q", m)
	}
	names := []string{}
	for cursor := ""; ; {
		r = h.as("GET", base+"?business_type=search&limit=2&cursor="+cursor, nil)
		for _, it := range r.items() {
			names = append(names, it["name"].(string))
			if _, ok := it["secret"]; ok {
				t.Fatal("a list shows a secret")
			}
		}
		if cursor = r.str("next_cursor"); cursor == "" {
			break
		}
	}
	if strings.Join(names, ",") != "s-5,s-4,s-3,s-2,s-1" {
		t.Fatalf("pages: %v", names)
	}
	r = h.as("GET", base, nil)
	if len(r.items()) != 6 {
		t.Fatalf("all types: %s", r.Raw)
	}
	r = h.as("GET", base+"?business_type=maas", nil)
	if len(r.items()) != 1 || r.items()[0]["business_type"] != "maas" {
		t.Fatalf("maas: %s", r.Raw)
	}
	h.expect(h.as("GET", base+"?business_type=chat", nil), 400, "invalid_input")
	h.expect(h.as("GET", base+"?fields=name,secret", nil), 400, "invalid_input")
	h.expect(h.as("GET", base+"?limit=501", nil), 400, "invalid_input")
	h.expect(h.as("GET", base, nil, "X-Keyledger-Position", "soon"), 400, "invalid_position")
	other := h.bootstrap("other")
	h.expect(h.call(other.Secret, "GET", base, nil), 404, "workspace_not_found")
}

func TestKeyLifecycle(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	base := "/v1/workspaces/" + ws + "/api-keys"
	r := h.as("POST", base, map[string]any{"business_type": "search", "name": "a", "qps_limit": 5})
	h.expect(r, 201, "")
	key, secret, pos := r.str("id"), r.str("secret"), r.Header.Get("X-Keyledger-Position")

	r = h.as("GET", base+"/"+key, nil, "X-Keyledger-Position", pos)
	h.expect(r, 200, "")
	etag := r.Header.Get("ETag")
	if r.str("name") != "a" || strings.Contains(string(r.Raw), secret) || etag == "" {
		t.Fatalf("get: %s", r.Raw)
	}

	r = h.as("PATCH", base+"/"+key, map[string]any{"name": "b", "allowlist": []string{"10.0.0.0/8"}, "note": "n", "qps_limit": nil}, "If-Match", etag)
	h.expect(r, 200, "")
	if r.str("name") != "b" || r.Body["qps_limit"] != nil || r.str("note") != "n" {
		t.Fatalf("patch: %s", r.Raw)
	}
	h.expect(h.as("PATCH", base+"/"+key, map[string]any{"note": "stale"}, "If-Match", etag), 412, "precondition_failed")
	// An If-Match sent without a tag (a client whose stored ETag was empty) matches
	// nothing: it is not the absence of a precondition.
	for _, blank := range []string{"", " ", ","} {
		h.expect(h.as("PATCH", base+"/"+key, map[string]any{"note": "blind"}, "If-Match", blank), 412, "precondition_failed")
	}
	h.expect(h.as("PATCH", base+"/"+key, map[string]any{"qps_limit": -1}), 400, "invalid_input")
	h.expect(h.as("PATCH", base+"/"+key, map[string]any{"secret": "x"}), 400, "invalid_input")
	r = h.as("GET", base+"/"+key, nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position"))
	if r.str("name") != "b" || fmt.Sprint(r.Body["allowlist"]) != "[10.0.0.0/8]" {
		t.Fatalf("after patch: %s", r.Raw)
	}

	// Reveal is audited: one event, with actor and credential.
	before := h.position()
	r = h.as("POST", base+"/"+key+"/reveal", nil)
	h.expect(r, 200, "")
	if r.str("secret") != secret || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("reveal: %s", r.Raw)
	}
	recs, _, err := h.svc.Store().Load(context.Background(), "workspace", ws, before)
	if err != nil || len(recs) != 1 || recs[0].Type != domain.TypeAPIKeyRevealed ||
		recs[0].Metadata.ActorID != h.admin.AccountID || recs[0].Metadata.CredentialID != h.admin.AccessKeyID {
		t.Fatalf("reveal events: %+v %v", recs, err)
	}

	// Delete: 204, then the key is gone and its plaintext destroyed.
	r = h.as("DELETE", base+"/"+key, nil)
	h.expect(r, 204, "")
	h.expect(h.as("POST", base+"/"+key+"/reveal", nil), 410, "api_key_deleted")
	h.expect(h.as("PATCH", base+"/"+key, map[string]any{"note": "x"}), 410, "api_key_deleted")
	h.expect(h.as("DELETE", base+"/"+key, nil), 410, "api_key_deleted")
	h.expect(h.as("GET", base+"/"+key, nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position")), 404, "api_key_not_found")
	recs, _, _ = h.svc.Store().Load(context.Background(), "workspace", ws, 0)
	var sealed []byte
	for _, rec := range recs {
		if e, ok := rec.Event.(domain.APIKeyCreated); ok && e.KeyID == key {
			sealed = e.Sealed
		}
	}
	if _, err := h.svc.Vault().Open(context.Background(), key, sealed); err == nil {
		t.Fatal("the plaintext of a deleted key can still be opened with the master key and the log")
	}
	h.expect(h.as("GET", base+"/key_01M8GTJZ02Q4X6XX8G0M176EHP", nil), 404, "api_key_not_found")
	h.expect(h.as("POST", base+"/key_01M8GTJZ02Q4X6XX8G0M176EHP/reveal", nil), 404, "api_key_not_found")
	h.expect(h.as("DELETE", base+"/junk", nil), 404, "api_key_not_found")

	other := h.bootstrap("other")
	r = h.as("POST", base, map[string]any{"business_type": "maas"})
	k2 := r.str("id")
	for m, body := range map[string]any{"GET": nil, "PATCH": map[string]any{}, "DELETE": nil} {
		h.expect(h.call(other.Secret, m, base+"/"+k2, body), 404, "workspace_not_found")
	}
	h.expect(h.as("DELETE", base+"/"+k2, map[string]any{}), 400, "body_not_allowed")
	h.expect(h.call(other.Secret, "POST", base+"/"+k2+"/reveal", nil), 404, "workspace_not_found")
}

// TestACreatedKeyTakesTheRepresentationItIsShownIn: a Search key is shown with
// "qps_limit": null when unlimited; a client sending that back creates one.
func TestACreatedKeyTakesTheRepresentationItIsShownIn(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	r := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search", "name": "unlimited", "qps_limit": nil})
	h.expect(r, 201, "")
	if v, ok := r.Body["qps_limit"]; !ok || v != nil {
		t.Fatalf("a key created with qps_limit null: %s", r.Raw)
	}
}

// TestAKeyCreationFingerprintsAsSent: the body a creation's Idempotency-Key is
// fingerprinted with is the request as sent (an absent qps_limit absent, a number a
// number), as it was before qps_limit took null: a retry across versions is the
// same request.
func TestAKeyCreationFingerprintsAsSent(t *testing.T) {
	ten := 10
	for _, c := range []struct {
		req  httpapi.CreateAPIKeyRequest
		want string
	}{
		{httpapi.CreateAPIKeyRequest{BusinessType: "search"}, `{"business_type":"search"}`},
		{httpapi.CreateAPIKeyRequest{BusinessType: "search", QPSLimit: httpapi.NullableInt{Set: true, Value: &ten}}, `{"business_type":"search","qps_limit":10}`},
		{httpapi.CreateAPIKeyRequest{BusinessType: "search", QPSLimit: httpapi.NullableInt{Set: true}}, `{"business_type":"search","qps_limit":null}`},
	} {
		if b, err := json.Marshal(c.req); err != nil || string(b) != c.want {
			t.Errorf("%+v: %s %v, want %s", c.req, b, err, c.want)
		}
	}
}

// TestAMaaSKeyTakesItsOwnRepresentation: a MaaS key is shown with "name": null
// and "qps_limit": null (it has neither); a PATCH sending those back, as a console
// editing the key it read does, changes the note and is no attempt at a name or a
// limit. A Search key cannot be left without a name.
func TestAMaaSKeyTakesItsOwnRepresentation(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	key := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	h.expect(key, 201, "")
	if v, ok := key.Body["name"]; !ok || v != nil {
		t.Fatalf("a MaaS key is shown without %q: null: %s", "name", key.Raw)
	}
	path := "/v1/workspaces/" + ws + "/api-keys/" + key.str("id")
	r := h.as("PATCH", path, map[string]any{"name": nil, "note": "edited", "qps_limit": nil})
	h.expect(r, 200, "")
	if r.str("note") != "edited" || r.Body["qps_limit"] != nil || r.Body["name"] != nil {
		t.Fatalf("patch: %s", r.Raw)
	}
	h.expect(h.as("PATCH", path, map[string]any{"qps_limit": 5}), 400, "invalid_input")
	h.expect(h.as("PATCH", path, map[string]any{"name": "named"}), 400, "invalid_input")
	for field, want := range map[string]string{"name": "must be a string, or null", "qps_limit": "must be an integer, or null"} {
		r := h.as("PATCH", path, map[string]any{field: true})
		h.expect(r, 400, "invalid_input")
		if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != field || f["code"] != "wrong_type" || f["message"] != want {
			t.Fatalf("%s of the wrong type: %s", field, r.Raw)
		}
	}
	// A key read is a template for a new one: its nulls are the defaults.
	h.expect(h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas", "name": nil, "qps_limit": nil}), 201, "")
	r = h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search", "name": nil})
	h.expect(r, 201, "")
	if !strings.HasPrefix(r.str("name"), "search-key-") {
		t.Fatalf("a Search key created with name null: %s", r.Raw)
	}

	search := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search", "name": "crawler"})
	h.expect(search, 201, "")
	r = h.as("PATCH", "/v1/workspaces/"+ws+"/api-keys/"+search.str("id"), map[string]any{"name": nil})
	h.expect(r, 400, "invalid_input")
	if !strings.Contains(string(r.Raw), `"name"`) || !strings.Contains(string(r.Raw), "required") {
		t.Fatalf("a Search key left without a name: %s", r.Raw)
	}
}

// TestSearchKeyNamesThatLookAlikeClash: names are compared as accounts' and roles'
// are, without case, variation selectors or differences in spacing: two keys
// shown alike in the console and the export are one name taken twice. A key can
// still be renamed to its own name in another case.
func TestSearchKeyNamesThatLookAlikeClash(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	crawler := h.as("POST", keys, map[string]any{"business_type": "search", "name": "web crawler"})
	h.expect(crawler, 201, "")
	for _, name := range []string{"Web Crawler", "web  crawler", "web\u00a0crawler", "web crawler\ufe0f", "WEB CRAWLER"} {
		h.expect(h.as("POST", keys, map[string]any{"business_type": "search", "name": name}), 409, "name_taken")
	}
	r := h.as("POST", keys+"/batch", map[string]any{"count": 2, "naming": map[string]any{"names": []string{"indexer", "Indexer"}}})
	h.expect(r, 400, "invalid_input")
	if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != "naming.names[1]" || f["code"] != "duplicate_entry" {
		t.Fatalf("look-alike names in one batch: %s", r.Raw)
	}
	h.expect(h.as("POST", keys+"/batch", map[string]any{"count": 2, "naming": map[string]any{"names": []string{"indexer", "WEB crawler"}}}), 409, "name_taken")
	other := h.as("POST", keys, map[string]any{"business_type": "search", "name": "fetcher"})
	h.expect(other, 201, "")
	h.expect(h.as("PATCH", keys+"/"+other.str("id"), map[string]any{"name": "Web Crawler"}), 409, "name_taken")
	r = h.as("PATCH", keys+"/"+crawler.str("id"), map[string]any{"name": "Web Crawler"})
	h.expect(r, 200, "")
	if r.str("name") != "Web Crawler" {
		t.Fatalf("renamed to its own name in another case: %s", r.Raw)
	}
	// Deleted, its name is free again.
	h.expect(h.as("DELETE", keys+"/"+crawler.str("id"), nil), 204, "")
	h.expect(h.as("POST", keys, map[string]any{"business_type": "search", "name": "web crawler"}), 201, "")
}
