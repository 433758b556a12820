package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/keyledger/keyledger/domain"
	"github.com/keyledger/keyledger/httpapi"
)

// TestBadInputIsA4xxAndWritesNothing: every input below was once answered 2xx or
// 5xx. Each is a 4xx problem document, nothing is appended, nothing logged at ERROR.
func TestBadInputIsA4xxAndWritesNothing(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	role := h.role("readers", []string{"api_key:read"})
	before := h.position()
	for _, tc := range []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code, field        string
	}{
		{"garbage cursor", "GET", "/v1/workspaces?cursor=garbage", nil, nil, 400, "invalid_cursor", ""},
		{"garbage key cursor", "GET", keys + "?cursor=%FF%FE", nil, nil, 400, "invalid_cursor", ""},
		{"idempotency key with a space", "POST", "/v1/workspaces", map[string]any{"name": "x"}, []string{"Idempotency-Key", "order 42"}, 400, "invalid_idempotency_key", ""},
		{"idempotency key not UTF-8", "POST", "/v1/workspaces", map[string]any{"name": "x"}, []string{"Idempotency-Key", "\xff\xfe"}, 400, "invalid_idempotency_key", ""},
		{"idempotency key sent empty", "POST", "/v1/workspaces", map[string]any{"name": "x"}, []string{"Idempotency-Key", ""}, 400, "invalid_idempotency_key", ""},
		{"two idempotency keys", "POST", "/v1/workspaces", map[string]any{"name": "x"}, []string{"Idempotency-Key", "a", "Idempotency-Key", "b"}, 400, "invalid_idempotency_key", ""},
		{"field name in another case", "POST", keys, `{"Business_Type":"maas"}`, nil, 400, "invalid_input", "Business_Type"},
		{"duplicate field", "POST", keys, `{"business_type":"maas","business_type":"search"}`, nil, 400, "invalid_input", "business_type"},
		{"null body", "POST", keys, `null`, nil, 400, "malformed_body", ""},
		{"invalid UTF-8 in a name", "POST", "/v1/workspaces", "{\"name\":\"a\xffb\"}", nil, 400, "malformed_body", ""},
		{"qps_list in uniform mode", "POST", keys + "/batch", map[string]any{"count": 2, "naming": map[string]any{"prefix": "p"},
			"rate_limit": map[string]any{"mode": "uniform", "qps": 3, "qps_list": []int{1, 2}}}, nil, 400, "invalid_input", "rate_limit.qps_list"},
		{"qps in individual mode", "POST", keys + "/batch", map[string]any{"count": 2, "naming": map[string]any{"prefix": "p"},
			"rate_limit": map[string]any{"mode": "individual", "qps": 3, "qps_list": []int{1, 2}}}, nil, 400, "invalid_input", "rate_limit.qps"},
		{"permissions null", "PATCH", "/v1/roles/" + role, `{"permissions":null}`, nil, 400, "invalid_input", "permissions"},
		{"null inside a list", "PUT", "/v1/workspaces/" + ws + "/members", `{"account_ids":[null]}`, nil, 400, "invalid_input", "account_ids[0]"},
		{"wrong type", "POST", keys + "/batch", `{"count":"ten"}`, nil, 400, "invalid_input", "count"},
		{"semicolon in the query", "GET", keys + "?fields=name;x", nil, nil, 400, "malformed_query", ""},
		{"unknown fields selector", "GET", keys + "?fields=name,x", nil, nil, 400, "invalid_input", "fields"},
		{"form body", "POST", "/v1/workspaces", "name=x", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
		{"text body", "POST", "/v1/workspaces", `{"name":"x"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"allowlist of commas", "POST", keys, `{"business_type":"maas","allowlist":"1.2.3.4` + strings.Repeat(",", 100000) + `"}`, nil, 400, "invalid_input", "allowlist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.as(tc.method, tc.path, tc.body, tc.headers...)
			h.expect(r, tc.status, tc.code)
			if tc.field != "" {
				fields, _ := r.Body["fields"].([]any)
				if len(fields) == 0 || fields[0].(map[string]any)["field"] != tc.field {
					t.Fatalf("fields: %s", r.Raw)
				}
			}
			for _, leak := range []string{"httpapi.", "commands.", "Go ", "[]string", "*"} {
				if strings.Contains(r.str("detail")+fmt.Sprint(r.Body["fields"]), leak) {
					t.Fatalf("the problem shows an internal name %q: %s", leak, r.Raw)
				}
			}
			if strings.Contains(string(r.Raw), `.","code"`) || strings.Contains(string(r.Raw), `."`+`,`) {
				t.Fatalf("field path with a trailing dot: %s", r.Raw)
			}
		})
	}
	if h.position() != before {
		t.Fatal("refused input wrote to the log")
	}
	if strings.Contains(h.logs.String(), `"level":"ERROR"`) {
		t.Fatalf("bad input logged at ERROR:\n%s", h.logs.String())
	}
}

func TestVerifyRefusesAZonedSourceIP(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	r := h.verify(h.http, "klm_x", ws, "maas", "::ffff:1.2.3.4%eth0")
	h.expect(r, 400, "invalid_input")
}

func TestClientConventions(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	// RFC 9110: the scheme is case-insensitive.
	h.expect(h.call("", "GET", "/v1/me", nil, "Authorization", "bearer "+h.admin.Secret), 200, "")
	h.expect(h.call("", "GET", "/v1/me", nil, "Authorization", "BEARER "+h.admin.Secret), 200, "")
	// HEAD works where GET does, without a body.
	for _, p := range []string{"/v1/workspaces", "/v1/workspaces/" + ws, "/v1/me", "/healthz"} {
		r := h.as("HEAD", p, nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
		if r.Status != 200 || len(r.Raw) != 0 {
			t.Fatalf("HEAD %s: %d %q", p, r.Status, r.Raw)
		}
	}
	// An emptied member set reads [], not null.
	acct, _ := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{acct}}), 200, "")
	r := h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}})
	h.expect(r, 200, "")
	if strings.Contains(string(r.Raw), "null") {
		t.Fatalf("emptied member set: %s", r.Raw)
	}
	// The request id in the log is the server's ULID; the client's is kept beside it.
	r = h.as("POST", "/v1/workspaces", map[string]any{"name": "traced"}, "X-Request-Id", "client-chosen-1")
	h.expect(r, 201, "")
	if r.Header.Get("X-Client-Request-Id") != "client-chosen-1" {
		t.Fatalf("the client's request id is not echoed: %q", r.Header.Get("X-Client-Request-Id"))
	}
	if _, err := ulid.ParseStrict(r.Header.Get("X-Request-Id")); err != nil {
		t.Fatalf("X-Request-Id %q is not the server's ULID", r.Header.Get("X-Request-Id"))
	}
	recs, _, err := h.svc.Store().Load(context.Background(), domain.AggregateWorkspace, r.str("id"), 0)
	if err != nil || len(recs) == 0 {
		t.Fatal(err)
	}
	meta := recs[0].Metadata
	if _, err := ulid.ParseStrict(meta.RequestID); err != nil {
		t.Fatalf("ce-requestid %q is not a server ULID", meta.RequestID)
	}
	if meta.ClientRequestID != "client-chosen-1" {
		t.Fatalf("client request id not kept beside: %+v", meta)
	}
}

func TestUnknownMethodsShareOneMetricsLabel(t *testing.T) {
	h := start(t)
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("X%dY", i), h.http.URL+"/v1/workspaces", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		req, _ = http.NewRequest("GET", h.http.URL+fmt.Sprintf("/nothing/%d", i), nil)
		if res, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	m := string(h.call("", "GET", "/metrics", nil).Raw)
	if strings.Contains(m, `method="X1Y"`) || strings.Contains(m, "/nothing/1") {
		t.Fatal("unknown methods or paths became label values")
	}
	if !strings.Contains(m, `method="other"`) {
		t.Fatalf("unknown methods are not counted under one label:\n%.3000s", m)
	}
}

func TestServerClosesIdleConnections(t *testing.T) {
	h := start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := httpapi.NewHTTPServer(h.svc.Handler(), httpapi.Timeouts{Idle: 300 * time.Millisecond})
	if srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.ReadHeaderTimeout == 0 {
		t.Fatalf("timeouts unset: %+v", srv)
	}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatal(err)
	}
	res.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("an idle keep-alive connection stayed open: %v", err)
	}
}

// TestInputAsPeopleTypeIt: business types in the console's case, allowlists with
// the commas of a Chinese keyboard, batch names as one comma-separated string, an
// unlimited key in an individual rate limit, and a batch that says it is Search.
func TestInputAsPeopleTypeIt(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"

	r := h.as("POST", keys, map[string]any{"business_type": "MaaS", "allowlist": "10.0.0.1，10.0.0.2、10.0.0.0/24"})
	h.expect(r, 201, "")
	if r.str("business_type") != "maas" || fmt.Sprint(r.Body["allowlist"]) != "[10.0.0.1 10.0.0.2 10.0.0.0/24]" {
		t.Fatalf("maas key: %s", r.Raw)
	}
	h.expect(h.as("POST", keys, map[string]any{"business_type": "Search", "name": "s"}), 201, "")
	list := h.as("GET", keys+"?business_type=SEARCH", nil, "X-Keyledger-Position", h.positionHeader())
	if h.expect(list, 200, ""); len(list.items()) != 1 || list.items()[0]["business_type"] != "search" {
		t.Fatalf("filter in another case: %s", list.Raw)
	}

	r = h.as("POST", keys+"/batch", map[string]any{"business_type": "Search", "count": 3, "naming": map[string]any{"names": "crawler-a, crawler-b，crawler-c"},
		"rate_limit": map[string]any{"mode": "individual", "qps_list": []any{5, nil, 20}}})
	h.expect(r, 201, "")
	var got []string
	for _, k := range r.items() {
		got = append(got, fmt.Sprintf("%v:%v", k["name"], k["qps_limit"]))
	}
	if strings.Join(got, " ") != "crawler-a:5 crawler-b:<nil> crawler-c:20" {
		t.Fatalf("batch: %v (%s)", got, r.Raw)
	}
	// A list pasted from elsewhere: the ideographic comma, semicolons and line
	// breaks separate names too, and an empty piece (a trailing comma) is none.
	r = h.as("POST", keys+"/batch", map[string]any{"count": 5, "naming": map[string]any{"names": "web a、web b；web c;web d\nweb e, ,"}})
	h.expect(r, 201, "")
	got = nil
	for _, k := range r.items() {
		got = append(got, fmt.Sprint(k["name"]))
	}
	if strings.Join(got, "|") != "web a|web b|web c|web d|web e" {
		t.Fatalf("pasted names: %v (%s)", got, r.Raw)
	}
	r = h.as("POST", keys+"/batch", map[string]any{"business_type": "maas", "count": 1, "naming": map[string]any{"prefix": "p"}})
	h.expect(r, 400, "invalid_input")
	if f := r.Body["fields"].([]any)[0].(map[string]any); f["field"] != "business_type" || f["code"] != "search_only" {
		t.Fatalf("a MaaS batch: %s", r.Raw)
	}
	h.expect(h.as("POST", keys, map[string]any{"business_type": "mass"}), 400, "invalid_input")

	// Dash ranges, IPv4 and IPv6, kept as given and matched exactly.
	r = h.as("POST", keys, map[string]any{"business_type": "maas", "allowlist": "10.0.0.1-10.0.0.50, 2001:db8::10-2001:db8::1f"})
	h.expect(r, 201, "")
	if fmt.Sprint(r.Body["allowlist"]) != "[10.0.0.1-10.0.0.50 2001:db8::10-2001:db8::1f]" {
		t.Fatalf("dash ranges: %s", r.Raw)
	}
	secret := r.str("secret")
	h.applied(r)
	for ip, code := range map[string]string{"10.0.0.1": "VALID", "10.0.0.50": "VALID", "10.0.0.51": "IP_NOT_ALLOWED",
		"10.0.0.0": "IP_NOT_ALLOWED", "2001:db8::1f": "VALID", "2001:db8::20": "IP_NOT_ALLOWED"} {
		h.decision(h.verify(nil, secret, ws, "maas", ip), code, code == "VALID")
	}
	before := h.position()
	for _, bad := range []string{"10.0.0.50-10.0.0.1", "10.0.0.1-2001:db8::1", "10.0.0.0/30, 10.0.0.0-10.0.0.3"} {
		r = h.as("POST", keys, map[string]any{"business_type": "maas", "allowlist": bad})
		h.expect(r, 400, "invalid_input")
	}
	if h.position() != before {
		t.Fatal("a refused allowlist wrote to the log")
	}
}

// TestAPositionPastTheLogsEndIsRefused: a read asked to wait for a position the log
// has not reached (another deployment's, or made up) is a 400 once the wait is
// over, not a 503 to retry forever.
func TestAPositionPastTheLogsEndIsRefused(t *testing.T) {
	h := start(t)
	svc, srv := h.instance(httpapi.Config{PositionWait: 200 * time.Millisecond})
	h.waitReady(svc)
	for _, pos := range []string{fmt.Sprint(h.position() + 1000), "18446744073709551615"} {
		h.expect(h.on(srv, h.admin.Secret, "GET", "/v1/workspaces", nil, httpapi.HeaderPosition, pos), 400, "invalid_position")
	}
}

// TestAnUnknownOrRepeatedQueryParameterIsRefused: a misspelt filter is a 400 naming
// it, not an answer silently wider than asked (every key, the whole history); so is
// a parameter given twice, or given empty. Authentication comes first.
func TestAnUnknownOrRepeatedQueryParameterIsRefused(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	for _, path := range []string{
		"/v1/workspaces/" + ws + "/api-keys?businesstype=search",
		"/v1/workspaces/" + ws + "/api-keys?as_of=2025-01-01T00:00:00Z",
		"/v1/audit?actor=acct_x",
		"/v1/costs?groupby=resource",
		"/v1/workspaces?limit=1&limit=2",
		"/v1/workspaces/" + ws + "/api-keys?batch_id=", // a console's ?batch_id=${id} with no id
		"/v1/workspaces/" + ws + "/api-keys?business_type=&limit=5",
		"/v1/audit?actor_id=",
	} {
		r := h.as("GET", path, nil)
		h.expect(r, 400, "invalid_input")
		if !strings.Contains(string(r.Raw), "unknown_parameter") && !strings.Contains(string(r.Raw), "repeated") && !strings.Contains(string(r.Raw), `"empty"`) {
			t.Fatalf("%s: %s", path, r.Raw)
		}
	}
	h.expect(h.as("GET", "/v1/workspaces/"+ws+"/api-keys?business_type=search&limit=5", nil, httpapi.HeaderPosition, fmt.Sprint(h.position())), 200, "")
	h.expect(h.call("", "GET", "/v1/audit?actor=acct_x", nil), 401, "unauthenticated")
}
