package httpapi_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
)

// without drops fields from a body, for comparing a create (with its secret) with
// a read.
func without(body map[string]any, fields ...string) string {
	c := map[string]any{}
	for k, v := range body {
		c[k] = v
	}
	for _, f := range fields {
		delete(c, f)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// sameAsRead checks that a write's answer is exactly what a read of the resource
// returns then, entity tag included.
func (h *harness) sameAsRead(what string, write response, path string, dropped ...string) response {
	h.t.Helper()
	read := h.as("GET", path, nil, "X-Keyledger-Position", write.Header.Get("X-Keyledger-Position"))
	h.expect(read, 200, "")
	if got, want := without(write.Body, dropped...), without(read.Body); got != want {
		h.t.Fatalf("%s: the write answers\n%s\nbut a read answers\n%s", what, got, want)
	}
	if tag := write.Header.Get("ETag"); tag != "" && tag != read.Header.Get("ETag") {
		h.t.Fatalf("%s: ETag %s on the write, %s on the read", what, tag, read.Header.Get("ETag"))
	}
	return read
}

var dateTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

func TestWritesAnswerTheRepresentationOfARead(t *testing.T) {
	h := start(t)
	ws := h.as("POST", "/v1/workspaces", map[string]any{"name": "prod", "description": "main"})
	h.expect(ws, 201, "")
	id := ws.str("id")
	h.sameAsRead("workspace create", ws, "/v1/workspaces/"+id)
	for _, f := range []string{"created_at", "updated_at"} {
		if !dateTime.MatchString(ws.str(f)) {
			t.Fatalf("%s is not a date-time: %s", f, ws.Raw)
		}
	}
	h.sameAsRead("workspace edit", h.as("PATCH", "/v1/workspaces/"+id, map[string]any{"name": "production"}), "/v1/workspaces/"+id)

	acct := h.as("POST", "/v1/accounts", map[string]any{"name": "alice"})
	h.expect(acct, 201, "")
	alice := acct.str("id")
	h.sameAsRead("account create", acct, "/v1/accounts/"+alice)
	ak := h.as("POST", "/v1/accounts/"+alice+"/access-key", nil)
	h.expect(ak, 201, "")
	read := h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", ak.Header.Get("X-Keyledger-Position"))
	if got, want := without(ak.Body, "secret"), without(read.Body["access_key"].(map[string]any)); got != want {
		t.Fatalf("access key create %s, its account shows %s", got, want)
	}
	h.sameAsRead("account edit", h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "disabled"}), "/v1/accounts/"+alice)

	keys := "/v1/workspaces/" + id + "/api-keys"
	one := h.as("POST", keys, map[string]any{"business_type": "search", "name": "crawler", "qps_limit": 5})
	h.expect(one, 201, "")
	h.sameAsRead("key create", one, keys+"/"+one.str("id"), "secret")
	h.sameAsRead("key edit", h.as("PATCH", keys+"/"+one.str("id"), map[string]any{"note": "n"}), keys+"/"+one.str("id"))
	batch := h.as("POST", keys+"/batch", map[string]any{"count": 2, "naming": map[string]any{"prefix": "b"}})
	h.expect(batch, 201, "")
	for _, item := range batch.items() {
		h.sameAsRead("batch item", response{Body: item, Header: batch.Header.Clone()}, keys+"/"+item["id"].(string), "secret")
	}

	role := h.as("POST", "/v1/roles", map[string]any{"name": "readers", "permissions": []string{"api_key:read"}, "users": []string{alice}})
	h.expect(role, 201, "")
	h.sameAsRead("role create", role, "/v1/roles/"+role.str("id"))
	h.sameAsRead("role edit", h.as("PATCH", "/v1/roles/"+role.str("id"), map[string]any{"name": "viewers"}), "/v1/roles/"+role.str("id"))

	members := h.as("PUT", "/v1/workspaces/"+id+"/members", map[string]any{"account_ids": []string{alice}})
	h.expect(members, 200, "")
	h.sameAsRead("members save", members, "/v1/workspaces/"+id+"/members")
}

func TestETagIsTheResourcesOwnVersion(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	keys := "/v1/workspaces/" + ws + "/api-keys"
	a := h.as("POST", keys, map[string]any{"business_type": "maas"}).str("id")
	b := h.as("POST", keys, map[string]any{"business_type": "maas"}).str("id")
	readB := h.as("GET", keys+"/"+b, nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	tagB := readB.Header.Get("ETag")
	if tagB == "" || regexp.MustCompile(`^"?\d+"?$`).MatchString(tagB) || tagB == `"`+readB.Header.Get("X-Keyledger-Position")+`"` {
		t.Fatalf("ETag %q is not opaque", tagB)
	}
	// An edit of key A changes neither B's tag nor what B's tag allows.
	edit := h.as("PATCH", keys+"/"+a, map[string]any{"note": "a"})
	h.expect(edit, 200, "")
	if again := h.as("GET", keys+"/"+b, nil, "X-Keyledger-Position", edit.Header.Get("X-Keyledger-Position")); again.Header.Get("ETag") != tagB {
		t.Fatalf("B's tag changed with an edit of A: %s → %s", tagB, again.Header.Get("ETag"))
	}
	h.expect(h.as("PATCH", keys+"/"+b, map[string]any{"note": "b"}, "If-Match", tagB), 200, "")
	h.expect(h.as("PATCH", keys+"/"+b, map[string]any{"note": "stale"}, "If-Match", tagB), 412, "precondition_failed")
	// Nor does a workspace rename or a membership change touch a key's tag.
	tagA := h.as("GET", keys+"/"+a, nil, "X-Keyledger-Position", fmt.Sprint(h.position())).Header.Get("ETag")
	h.expect(h.as("PATCH", "/v1/workspaces/"+ws, map[string]any{"name": "renamed"}), 200, "")
	h.expect(h.as("DELETE", keys+"/"+a, nil, "If-Match", tagA), 204, "")

	// If-Match holds on accounts and roles too.
	alice, _ := h.subAccount("alice")
	tag := h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", fmt.Sprint(h.position())).Header.Get("ETag")
	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "disabled"}, "If-Match", tag), 200, "")
	before := h.position()
	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "enabled"}, "If-Match", tag), 412, "precondition_failed")
	role := h.as("POST", "/v1/roles", map[string]any{"name": "r", "permissions": []string{"api_key:read"}})
	rtag := role.Header.Get("ETag")
	h.expect(h.as("PATCH", "/v1/roles/"+role.str("id"), map[string]any{"name": "r2"}, "If-Match", rtag), 200, "")
	h.expect(h.as("PATCH", "/v1/roles/"+role.str("id"), map[string]any{"name": "r3"}, "If-Match", rtag), 412, "precondition_failed")
	h.expect(h.as("DELETE", "/v1/roles/"+role.str("id"), nil, "If-Match", rtag), 412, "precondition_failed")
	if h.position() != before+3 { // the role's creation (with its permission) and rename
		t.Fatalf("refused preconditions wrote: %d events", h.position()-before)
	}
	// Members have their own tag.
	mtag := h.as("GET", "/v1/workspaces/"+ws+"/members", nil, "X-Keyledger-Position", fmt.Sprint(h.position())).Header.Get("ETag")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}, "If-Match", mtag), 200, "")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}, "If-Match", mtag), 412, "precondition_failed")
}

func TestSubAccountSeesOnlyItselfWithoutAccountRead(t *testing.T) {
	h := start(t)
	alice, aliceSecret := h.subAccount("alice")
	h.subAccount("bob")
	r := h.call(aliceSecret, "GET", "/v1/accounts", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 1 || items[0]["id"] != alice {
		t.Fatalf("a sub-account without account:read lists: %s", r.Raw)
	}
	h.role("directory", []string{"account:read"}, alice)
	r = h.call(aliceSecret, "GET", "/v1/accounts", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if len(r.items()) != 3 {
		t.Fatalf("with account:read: %s", r.Raw)
	}
}
