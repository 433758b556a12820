package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"

	"github.com/keyledger/keyledger/httpapi"
	"github.com/keyledger/keyledger/projections/pgtest"
)

// otherLast replaces a secret's last character with another one, so its checksum
// no longer matches.
func otherLast(s string) string {
	last := s[len(s)-1]
	repl := byte('x')
	if last == repl {
		repl = 'y'
	}
	return s[:len(s)-1] + string(repl)
}

func TestAuthenticationFailuresLookAlike(t *testing.T) {
	const floor = 60 * time.Millisecond
	h := start(t, httpapi.Config{AuthFailureFloor: floor})
	ws := h.workspace("prod")
	maas := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("secret")
	disabledID, disabled := h.subAccount("disabled")
	h.expect(h.as("PATCH", "/v1/accounts/"+disabledID, map[string]any{"status": "disabled"}), 200, "")
	deletedID, deleted := h.subAccount("deleted")
	h.expect(h.as("DELETE", "/v1/accounts/"+deletedID+"/access-key", nil), 204, "")
	bodies := map[string]string{}
	for name, header := range map[string]string{
		"none":             "",
		"not bearer":       "Basic " + h.admin.Secret,
		"malformed":        "Bearer kla_nope",
		"bad checksum":     "Bearer " + otherLast(h.admin.Secret),
		"unknown":          "Bearer " + strings.Replace(h.admin.Secret, h.admin.Secret[4:10], "AAAAAA", 1),
		"an api key":       "Bearer " + maas,
		"trailing junk":    "Bearer " + h.admin.Secret + "0",
		"empty bearer":     "Bearer ",
		"disabled account": "Bearer " + disabled,
		"deleted key":      "Bearer " + deleted,
	} {
		var r response
		began := time.Now()
		if header == "" {
			r = h.call("", "GET", "/v1/workspaces", nil)
		} else {
			r = h.call("", "GET", "/v1/workspaces", nil, "Authorization", header)
		}
		// Every reason takes at least the floor, so timing does not tell whether a
		// credential was ever issued (the work behind each stays well under it).
		if took := time.Since(began); took < floor {
			t.Fatalf("%s: refused after %v, before the floor of %v", name, took, floor)
		}
		h.expect(r, 401, "unauthenticated")
		if r.Header.Get("WWW-Authenticate") != `Bearer realm="keyledger"` {
			t.Fatalf("%s: WWW-Authenticate %q", name, r.Header.Get("WWW-Authenticate"))
		}
		delete(r.Body, "request_id")
		b, _ := json.Marshal(r.Body)
		bodies[string(b)] = name
	}
	if len(bodies) != 1 {
		t.Fatalf("401 bodies differ by reason: %v", bodies)
	}
	// Every management route requires a credential.
	for _, rt := range []struct{ m, p string }{
		{"POST", "/v1/workspaces"}, {"GET", "/v1/workspaces/" + ws}, {"PATCH", "/v1/workspaces/" + ws},
		{"POST", "/v1/accounts"}, {"GET", "/v1/accounts"}, {"GET", "/v1/workspaces/" + ws + "/members"},
		{"PUT", "/v1/workspaces/" + ws + "/members"}, {"POST", "/v1/workspaces/" + ws + "/api-keys"},
		{"POST", "/v1/workspaces/" + ws + "/api-keys/batch"}, {"GET", "/v1/workspaces/" + ws + "/api-keys"},
	} {
		h.expect(h.call("", rt.m, rt.p, map[string]any{}), 401, "unauthenticated")
	}
}

func TestBadBodies(t *testing.T) {
	h := start(t, httpapi.Config{BodyLimit: 2048})
	ws := h.workspace("prod")
	before := h.position()
	h.expect(h.as("POST", "/v1/workspaces", `{"name":`), 400, "malformed_body")
	h.expect(h.as("POST", "/v1/workspaces", ``), 400, "malformed_body")
	h.expect(h.as("POST", "/v1/workspaces", `{"name":"a"} {"name":"b"}`), 400, "malformed_body")
	r := h.as("POST", "/v1/workspaces", `{"name":"a","colour":"red"}`)
	h.expect(r, 400, "invalid_input")
	if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != "colour" || f["code"] != "unknown_field" {
		t.Fatalf("fields %s", r.Raw)
	}
	r = h.as("POST", "/v1/workspaces/"+ws+"/api-keys/batch", `{"count":"ten"}`)
	h.expect(r, 400, "invalid_input")
	if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != "count" || f["code"] != "wrong_type" {
		t.Fatalf("fields %s", r.Raw)
	}
	big := `{"name":"` + strings.Repeat("x", 4096) + `"}`
	h.expect(h.as("POST", "/v1/workspaces", big), 413, "body_too_large")
	h.expect(h.as("POST", "/v1/workspaces", map[string]any{"name": "a"}, "Idempotency-Key", strings.Repeat("k", 300)), 400, "invalid_idempotency_key")
	h.expect(h.as("GET", "/v1/nothing", nil), 404, "route_not_found")
	h.expect(h.as("DELETE", "/v1/workspaces", nil), 405, "method_not_allowed")
	if h.position() != before {
		t.Fatal("bad input wrote to the log")
	}
}

func TestIdempotencyKey(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	path := "/v1/workspaces/" + ws + "/api-keys"
	body := map[string]any{"business_type": "search", "name": "once", "qps_limit": 3}
	first := h.as("POST", path, body, "Idempotency-Key", "create-once")
	h.expect(first, 201, "")
	after := h.position()
	again := h.as("POST", path, body, "Idempotency-Key", "create-once")
	h.expect(again, 201, "")
	// The same key and secret, as the log has the key now: revealed by the replay.
	if again.str("id") != first.str("id") || again.str("secret") != first.str("secret") || again.Body["last_revealed_at"] == nil ||
		again.Header.Get("X-Keyledger-Position") != fmt.Sprint(after+1) {
		t.Fatalf("replay differs:\n%s\n%s", first.Raw, again.Raw)
	}
	if h.position() != after+1 || h.reveals(ws) != 1 {
		t.Fatal("a replay of a key creation must write its reveal and nothing else")
	}
	h.expect(h.as("POST", path, map[string]any{"business_type": "search", "name": "other"}, "Idempotency-Key", "create-once"), 422, "idempotency_key_reused")
	// The same key in another organization is another key.
	other := h.bootstrap("other")
	r := h.call(other.Secret, "POST", "/v1/workspaces", map[string]any{"name": "theirs"}, "Idempotency-Key", "create-once")
	h.expect(r, 201, "")
	// A failed request frees its key for a corrected retry.
	h.expect(h.as("POST", "/v1/workspaces", map[string]any{"name": ""}, "Idempotency-Key", "ws-1"), 400, "invalid_input")
	h.expect(h.as("POST", "/v1/workspaces", map[string]any{"name": "fixed"}, "Idempotency-Key", "ws-1"), 201, "")
	// A batch replays with the same secrets.
	batch := map[string]any{"count": 3, "naming": map[string]any{"prefix": "b"}}
	b1 := h.as("POST", path+"/batch", batch, "Idempotency-Key", "batch-1")
	b2 := h.as("POST", path+"/batch", batch, "Idempotency-Key", "batch-1")
	if b1.Status != 201 || b2.Status != 201 || len(b1.items()) != 3 || len(b2.items()) != 3 {
		t.Fatalf("batch replay:\n%s\n%s", b1.Raw, b2.Raw)
	}
	for i, k := range b2.items() {
		if k["id"] != b1.items()[i]["id"] || k["secret"] != b1.items()[i]["secret"] || k["last_revealed_at"] == nil {
			t.Fatalf("batch replay, key %d:\n%s\n%s", i, b1.Raw, b2.Raw)
		}
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	h := start(t)
	r := h.call("", "GET", "/openapi.json", nil)
	h.expect(r, 200, "")
	doc, err := openapi3.NewLoader().LoadFromData(r.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	for _, want := range []struct{ method, path string }{
		{"POST", "/v1/workspaces"}, {"GET", "/v1/workspaces"}, {"GET", "/v1/workspaces/{ws}"}, {"PATCH", "/v1/workspaces/{ws}"},
		{"POST", "/v1/accounts"}, {"GET", "/v1/accounts"}, {"GET", "/v1/workspaces/{ws}/members"}, {"PUT", "/v1/workspaces/{ws}/members"},
		{"POST", "/v1/workspaces/{ws}/api-keys"}, {"POST", "/v1/workspaces/{ws}/api-keys/batch"}, {"GET", "/v1/workspaces/{ws}/api-keys"},
		{"GET", "/v1/workspaces/{ws}/api-keys/{key}"}, {"PATCH", "/v1/workspaces/{ws}/api-keys/{key}"},
		{"DELETE", "/v1/workspaces/{ws}/api-keys/{key}"}, {"POST", "/v1/workspaces/{ws}/api-keys/{key}/reveal"},
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/openapi.json"}, {"GET", "/asyncapi.json"}, {"GET", "/metrics"},
		{"GET", "/v1/me"}, {"GET", "/v1/accounts/{id}"}, {"PATCH", "/v1/accounts/{id}"}, {"POST", "/v1/accounts/{id}/access-key"},
		{"PATCH", "/v1/accounts/{id}/access-key"}, {"DELETE", "/v1/accounts/{id}/access-key"},
		{"POST", "/v1/roles"}, {"GET", "/v1/roles"}, {"PATCH", "/v1/roles/{id}"}, {"DELETE", "/v1/roles/{id}"},
		{"POST", "/v1/accounts/{id}/access-key/rotate"}, {"GET", "/v1/accounts/{id}/workspaces"}, {"PUT", "/v1/accounts/{id}/workspaces"},
	} {
		item := doc.Paths.Find(want.path)
		if item == nil || item.GetOperation(want.method) == nil {
			t.Errorf("%s %s is not described", want.method, want.path)
		}
	}
	schema := doc.Paths.Find("/v1/workspaces/{ws}/api-keys/batch").Post.RequestBody.Value.Content.Get("application/json").Schema.Value
	if schema.Properties["count"] == nil || schema.Properties["naming"] == nil || schema.Properties["rate_limit"] == nil {
		t.Fatalf("batch schema %v", schema.Properties)
	}
	// null where the decoder takes it, and nowhere else.
	patch := doc.Components.Schemas["UpdateAPIKeyRequest"].Value.Properties
	for field, nullable := range map[string]bool{"name": true, "qps_limit": true, "note": false, "allowlist": false} {
		if p := patch[field]; p == nil || p.Value.Nullable != nullable {
			t.Errorf("PATCH of a key: %s nullable should be %v: %+v", field, nullable, p)
		}
	}
	if p := doc.Components.Schemas["APIKey"].Value.Properties["name"]; p == nil || !p.Value.Nullable {
		t.Errorf("a key's name is shown null for a MaaS key: %+v", p)
	}
	if p := doc.Components.Schemas["BatchNaming"]; p == nil || !strings.Contains(p.Value.Properties["names"].Value.Description, "string of names") {
		t.Errorf("a batch's names say they take one string too: %+v", p)
	}
	// One named schema per resource, one for problems.
	for _, name := range []string{"Workspace", "Account", "AccessKey", "APIKey", "Role", "Member", "Problem"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s", name)
		}
	}
	key := doc.Components.Schemas["APIKey"].Value
	// The fields a key list may select are an enum: exactly the key's own fields.
	var fields *openapi3.Parameter
	for _, p := range doc.Paths.Find("/v1/workspaces/{ws}/api-keys").Get.Parameters {
		if p.Value.Name == "fields" {
			fields = p.Value
		}
	}
	if fields == nil || fields.Explode == nil || *fields.Explode || len(fields.Schema.Value.Items.Value.Enum) != len(key.Properties) {
		t.Fatalf("fields parameter: %+v", fields)
	}
	for _, v := range fields.Schema.Value.Items.Value.Enum {
		if key.Properties[v.(string)] == nil {
			t.Errorf("fields enum %q is no field of a key", v)
		}
	}
	if fmt.Sprint(key.Properties["business_type"].Value.Enum) != "[maas search]" || !key.Properties["qps_limit"].Value.Nullable ||
		!slices.Contains(key.Required, "id") || slices.Contains(key.Required, "secret") {
		t.Errorf("APIKey schema: enum %v, qps_limit nullable %v, required %v", key.Properties["business_type"].Value.Enum,
			key.Properties["qps_limit"].Value.Nullable, key.Required)
	}
	list := doc.Paths.Find("/v1/workspaces/{ws}/api-keys").Get
	if l := list.Parameters.GetByInAndName("query", "limit"); l == nil || !l.Schema.Value.Type.Is("integer") {
		t.Error("limit is not an integer parameter")
	}
	if f := list.Parameters.GetByInAndName("query", "fields"); f == nil || len(f.Schema.Value.Items.Value.Enum) == 0 {
		t.Error("fields does not list its values")
	}
	verify := doc.Paths.Find("/v1/verify").Post
	if verify.Security == nil || (*verify.Security)[0]["gatewayToken"] == nil {
		t.Error("the gateway token is not the security scheme of /v1/verify")
	}
	if code := verify.Responses.Status(200).Value.Content.Get("application/json").Schema.Value.Properties["code"]; len(code.Value.Enum) != 10 {
		t.Errorf("decision codes: %v", code.Value.Enum)
	}
	create := doc.Paths.Find("/v1/workspaces").Post.Responses
	if create.Status(201).Value.Headers["Location"] == nil || create.Status(201).Value.Headers["ETag"] == nil ||
		create.Status(401).Value.Headers["WWW-Authenticate"] == nil || create.Status(503).Value.Headers["Retry-After"] == nil {
		t.Error("response headers are not described")
	}
	if doc.Paths.Find("/v1/workspaces/{ws}").Patch.Responses.Status(412) == nil {
		t.Error("412 is not described on a PATCH with If-Match")
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	h := start(t)
	h.expect(h.call("", "GET", "/healthz", nil), 200, "")
	h.workspace("counted")
	m := h.call("", "GET", "/metrics", nil)
	if m.Status != 200 || !strings.Contains(string(m.Raw), `keyledger_http_request_duration_seconds_count{method="POST",route="/v1/workspaces",status="201"} 1`) {
		t.Fatalf("metrics: %.2000s", m.Raw)
	}
	// The workspace was created through the command side's cache: one miss at least.
	if !regexp.MustCompile(`(?m)^keyledger_aggregate_cache_misses_total\{aggregate="workspace"\} [1-9]`).Match(m.Raw) {
		t.Fatalf("aggregate cache metrics: %.4000s", m.Raw)
	}
	r := h.call("", "GET", "/readyz", nil)
	h.expect(r, 200, "")
	if checks := r.Body["checks"].(map[string]any); checks["nats"] != "ok" || checks["postgres"] != "ok" || checks["projection"] != "ok" {
		t.Fatalf("readyz %s", r.Raw)
	}
}

func TestNATSOutageIs503AndLosesNothing(t *testing.T) {
	h := start(t)
	ws := h.workspace("kept")
	h.nats.Shutdown()
	h.nats.WaitForShutdown()
	r := h.as("POST", "/v1/workspaces", map[string]any{"name": "during outage"})
	h.expect(r, 503, "unavailable")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	if r := h.call("", "GET", "/readyz", nil); r.Status != 503 || r.Body["checks"].(map[string]any)["nats"] == "ok" {
		t.Fatalf("readyz during outage: %d %s", r.Status, r.Raw)
	}
	h.nats.Restart(h.t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = h.as("POST", "/v1/workspaces", map[string]any{"name": "after outage"})
		if r.Status == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %s", r.Raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	r = h.as("GET", "/v1/workspaces/"+ws, nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position"))
	h.expect(r, 200, "")
}

func TestPostgresOutage(t *testing.T) {
	h := start(t)
	ctx := context.Background()
	var db string
	if err := h.svc.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	cut := func(allow bool) {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS "+map[bool]string{true: "true", false: "false"}[allow]); err != nil {
			t.Fatal(err)
		}
		if !allow {
			if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
				t.Fatal(err)
			}
		}
	}
	cut(false)
	defer cut(true)
	// Reads need the views: 503. Writes go to the log: acknowledged, and kept.
	h.expect(h.as("GET", "/v1/workspaces", nil), 503, "unavailable")
	// An export answers 503 too, not a 200 with nothing in it.
	if status, _ := h.stream(h.admin.Secret, "/v1/audit"); status != 503 {
		t.Fatalf("audit export during a PostgreSQL outage: %d", status)
	}
	r := h.as("POST", "/v1/workspaces", map[string]any{"name": "written during the outage"})
	h.expect(r, 201, "")
	h.expect(h.as("POST", "/v1/workspaces", map[string]any{"name": "x"}, "Idempotency-Key", "k"), 503, "unavailable")
	if r := h.call("", "GET", "/readyz", nil); r.Status != 503 {
		t.Fatalf("readyz during a PostgreSQL outage: %d %s", r.Status, r.Raw)
	}
	cut(true)
	got := h.as("GET", "/v1/workspaces/"+r.str("id"), nil, "X-Keyledger-Position", r.Header.Get("X-Keyledger-Position"))
	h.expect(got, 200, "")
	if got.str("name") != "written during the outage" {
		t.Fatalf("after the outage: %s", got.Raw)
	}
}
