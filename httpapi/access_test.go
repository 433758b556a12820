package httpapi_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/keyledger/keyledger/domain"
)

// allPermissions is every grantable item.
func allPermissions() []string {
	var out []string
	for _, m := range domain.GrantableModules() {
		for _, a := range domain.ActionsOf(m) {
			out = append(out, domain.Permission{Module: m, Action: a}.String())
		}
	}
	return out
}

// subAccount creates a sub-account with an access key and returns its id and secret.
func (h *harness) subAccount(name string) (string, string) {
	h.t.Helper()
	r := h.as("POST", "/v1/accounts", map[string]any{"name": name})
	h.expect(r, 201, "")
	id := r.str("id")
	r = h.as("POST", "/v1/accounts/"+id+"/access-key", nil)
	h.expect(r, 201, "")
	return id, r.str("secret")
}

func (h *harness) role(name string, perms []string, users ...string) string {
	h.t.Helper()
	if users == nil {
		users = []string{}
	}
	r := h.as("POST", "/v1/roles", map[string]any{"name": name, "permissions": perms, "users": users})
	h.expect(r, 201, "")
	return r.str("id")
}

func TestAccessKeyLifecycle(t *testing.T) {
	h := start(t)
	r := h.as("POST", "/v1/accounts", map[string]any{"name": "alice"})
	alice := r.str("id")
	r = h.as("POST", "/v1/accounts/"+alice+"/access-key", nil)
	h.expect(r, 201, "")
	secret := r.str("secret")
	if c, err := domain.ParseCredential(secret); err != nil || c.Kind() != domain.KindAccessSecret || r.str("id") == "" || r.str("account_id") != alice || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %v %s", err, r.Raw)
	}
	h.expect(h.as("POST", "/v1/accounts/"+alice+"/access-key", nil), 409, "access_key_exists")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 200, "")

	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "disabled"}), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.as("PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "enabled"}), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 200, "")

	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "disabled"}), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "enabled"}), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 200, "")

	h.expect(h.as("DELETE", "/v1/accounts/"+alice+"/access-key", nil), 204, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 401, "unauthenticated")
	h.expect(h.as("DELETE", "/v1/accounts/"+alice+"/access-key", nil), 404, "access_key_not_found")
	r = h.as("POST", "/v1/accounts/"+alice+"/access-key", nil)
	h.expect(r, 201, "")
	h.expect(h.call(r.str("secret"), "GET", "/v1/me", nil), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 401, "unauthenticated")

	// The primary account cannot lock the organization out.
	h.expect(h.as("PATCH", "/v1/accounts/"+h.admin.AccountID, map[string]any{"status": "disabled"}), 409, "primary_account")
	h.expect(h.as("DELETE", "/v1/accounts/"+h.admin.AccountID+"/access-key", nil), 409, "primary_account")
	h.expect(h.as("PATCH", "/v1/accounts/"+alice, map[string]any{"status": "paused"}), 400, "invalid_input")
	h.expect(h.as("POST", "/v1/accounts/acct_01M8GTJZ02Q4X6XX8G0M176EHP/access-key", nil), 404, "account_not_found")

	// The views: status and access key, never a secret.
	r = h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	h.expect(r, 200, "")
	ak, _ := r.Body["access_key"].(map[string]any)
	if r.str("status") != "enabled" || ak["status"] != "enabled" || ak["access_key_id"] == "" {
		t.Fatalf("account view: %s", r.Raw)
	}
}

func TestOneAccessKeyUnderConcurrency(t *testing.T) {
	h := start(t)
	alice := h.as("POST", "/v1/accounts", map[string]any{"name": "alice"}).str("id")
	before := h.position()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	var secret string
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.as("POST", "/v1/accounts/"+alice+"/access-key", nil)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.Status]++
			if r.Status == 201 {
				secret = r.str("secret")
			}
		}()
	}
	wg.Wait()
	if statuses[201] != 1 || statuses[409] != 49 {
		t.Fatalf("statuses %v", statuses)
	}
	if h.position() != before+1 {
		t.Fatalf("%d events for one access key", h.position()-before)
	}
	h.expect(h.call(secret, "GET", "/v1/me", nil), 200, "")
}

func TestRolesAndMe(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	alice, secret := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")

	r := h.call(secret, "GET", "/v1/me", nil)
	h.expect(r, 200, "")
	perms := r.Body["permissions"].(map[string]any)
	if len(perms["api_key"].([]any)) != 0 || r.Body["account"].(map[string]any)["id"] != alice {
		t.Fatalf("me without roles: %s", r.Raw)
	}

	readers := h.role("readers", []string{"api_key:read", "workspace:read"}, alice)
	h.expect(h.as("POST", "/v1/roles", map[string]any{"name": "readers"}), 409, "name_taken")
	h.expect(h.as("POST", "/v1/roles", map[string]any{"name": "bad", "permissions": []string{"api_key:fly", "billing:read", "organization:admin"}}), 400, "invalid_input")
	h.expect(h.as("POST", "/v1/roles", map[string]any{"name": "bad", "users": []string{"acct_nobody"}}), 400, "invalid_input")
	// A permission listed twice is refused, as a user or a workspace listed twice is.
	dup := h.as("POST", "/v1/roles", map[string]any{"name": "twice", "permissions": []string{"api_key:read", "api_key:read"}})
	h.expect(dup, 400, "invalid_input")
	if !strings.Contains(string(dup.Raw), `"field":"permissions[1]","code":"duplicate_entry"`) {
		t.Fatalf("a permission twice: %s", dup.Raw)
	}
	writers := h.role("writers", []string{"api_key:create", "api_key:read"}, alice)

	r = h.call(secret, "GET", "/v1/me", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	perms = r.Body["permissions"].(map[string]any)
	if fmt.Sprint(perms["api_key"]) != "[create read]" || fmt.Sprint(perms["workspace"]) != "[read]" || fmt.Sprint(r.Body["workspaces"]) != "["+ws+"]" {
		t.Fatalf("me: %s", r.Raw)
	}
	h.expect(h.call(secret, "POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}), 201, "")
	r = h.call(secret, "DELETE", "/v1/workspaces/"+ws+"/api-keys/key_01M8GTJZ02Q4X6XX8G0M176EHP", nil)
	h.expect(r, 403, "forbidden")
	if r.str("missing_permission") != "api_key:delete" {
		t.Fatalf("403 must name the permission: %s", r.Raw)
	}

	// Roles view and effective permissions view.
	r = h.as("GET", "/v1/roles", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	h.expect(r, 200, "")
	if items := r.items(); len(items) != 2 || fmt.Sprint(items[0]["permissions"]) != "[api_key:read workspace:read]" || fmt.Sprint(items[0]["users"]) != "["+alice+"]" {
		t.Fatalf("roles: %s", r.Raw)
	}
	r = h.as("GET", "/v1/accounts/"+alice, nil)
	if fmt.Sprint(r.Body["permissions"]) != "[api_key:create api_key:read workspace:read]" {
		t.Fatalf("effective permissions view: %s", r.Raw)
	}

	// Rename and replace; then delete.
	r = h.as("PATCH", "/v1/roles/"+writers, map[string]any{"name": "creators", "permissions": []string{"api_key:create"}})
	h.expect(r, 200, "")
	if r.str("name") != "creators" || fmt.Sprint(r.Body["permissions"]) != "[api_key:create]" {
		t.Fatalf("patch role: %s", r.Raw)
	}
	h.expect(h.as("PATCH", "/v1/roles/"+writers, map[string]any{"name": "readers"}), 409, "name_taken")
	h.expect(h.as("DELETE", "/v1/roles/"+readers, nil), 204, "")
	h.expect(h.as("DELETE", "/v1/roles/"+readers, nil), 404, "role_not_found")
	r = h.call(secret, "GET", "/v1/workspaces/"+ws+"/api-keys", nil)
	h.expect(r, 403, "forbidden")
	r = h.as("GET", "/v1/accounts/"+alice, nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if fmt.Sprint(r.Body["permissions"]) != "[api_key:create]" {
		t.Fatalf("effective permissions after changes: %s", r.Raw)
	}
	// A sub-account does not administer the organization.
	r = h.call(secret, "POST", "/v1/roles", map[string]any{"name": "mine"})
	h.expect(r, 403, "forbidden")
	if r.str("missing_permission") != "organization:admin" {
		t.Fatalf("%s", r.Raw)
	}
}

func TestRevocationAppliesToTheNextRequest(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	alice, secret := h.subAccount("alice")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{alice}}), 200, "")
	role := h.role("keys", []string{"api_key:create", "api_key:read"}, alice)
	create := func() response {
		return h.call(secret, "POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"})
	}
	h.expect(create(), 201, "")
	// Out of the role: the very next request is refused.
	h.expect(h.as("PATCH", "/v1/roles/"+role, map[string]any{"users": []string{}}), 200, "")
	h.expect(create(), 403, "forbidden")
	h.expect(h.as("PATCH", "/v1/roles/"+role, map[string]any{"users": []string{alice}}), 200, "")
	h.expect(create(), 201, "")
	// Out of the workspace: the very next request is refused.
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{}}), 200, "")
	h.expect(create(), 403, "not_a_member")
	h.expect(h.call(secret, "GET", "/v1/workspaces/"+ws+"/api-keys", nil), 403, "not_a_member")
	r := h.call(secret, "GET", "/v1/workspaces", nil, "X-Keyledger-Position", fmt.Sprint(h.position()))
	if len(r.items()) != 0 {
		t.Fatalf("a removed member still lists the workspace: %s", r.Raw)
	}
}

func TestSubAccountManagesItsOwnAccessKey(t *testing.T) {
	h := start(t)
	alice, secret := h.subAccount("alice")
	bob, _ := h.subAccount("bob")
	h.expect(h.call(secret, "PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "disabled"}), 403, "forbidden")
	h.role("self", []string{"access_key:update", "access_key:delete", "access_key:create"}, alice)
	// Its own key only; another account's needs organization:admin.
	r := h.call(secret, "PATCH", "/v1/accounts/"+bob+"/access-key", map[string]any{"status": "disabled"})
	h.expect(r, 403, "forbidden")
	if r.str("missing_permission") != "organization:admin" {
		t.Fatalf("%s", r.Raw)
	}
	h.expect(h.call(secret, "PATCH", "/v1/accounts/"+alice+"/access-key", map[string]any{"status": "disabled"}), 200, "")
	h.expect(h.call(secret, "GET", "/v1/me", nil), 401, "unauthenticated")
}

// TestIsolationMatrix: every management route, every kind of caller, the expected
// status, generated from the route's kind of authorization; a refused call writes
// nothing.
func TestIsolationMatrix(t *testing.T) {
	h := start(t)
	ws := h.workspace("prod")
	all := allPermissions()
	memberWith, memberWithSecret := h.subAccount("member-with")
	memberWithout, memberWithoutSecret := h.subAccount("member-without")
	nonMember, nonMemberSecret := h.subAccount("non-member")
	disabled, disabledSecret := h.subAccount("disabled")
	deletedKey, deletedKeySecret := h.subAccount("deleted-key")
	h.expect(h.as("PUT", "/v1/workspaces/"+ws+"/members", map[string]any{"account_ids": []string{memberWith, memberWithout, disabled, deletedKey}}), 200, "")
	h.role("everything", all, memberWith, nonMember, disabled, deletedKey)
	h.expect(h.as("PATCH", "/v1/accounts/"+disabled, map[string]any{"status": "disabled"}), 200, "")
	h.expect(h.as("DELETE", "/v1/accounts/"+deletedKey+"/access-key", nil), 204, "")
	other := h.bootstrap("other")
	key0 := h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "search"}).str("id")

	type caller struct{ name, secret string }
	callers := []caller{
		{"primary", h.admin.Secret}, {"member-with-permission", memberWithSecret}, {"member-without-permission", memberWithoutSecret},
		{"non-member-with-permission", nonMemberSecret}, {"other-organization", other.Secret}, {"disabled-account", disabledSecret},
		{"deleted-access-key", deletedKeySecret}, {"no-credential", ""},
	}
	// Kinds of authorization.
	const (
		open        = iota // any authenticated account of the organization
		openTarget         // a resource of the organization: another one gets 404
		workspace          // permission + membership; another organization gets 404
		createWS           // workspace:create
		adminTarget        // organization:admin on a resource of the organization
		adminOwn           // organization:admin in the caller's own organization
		readTarget         // account:read on another account of the organization
		memberOnly         // membership alone, no permission; another organization gets 404
	)
	n := 0
	uniq := func() string { n++; return fmt.Sprint(n) }
	freshKey := func() string {
		return h.as("POST", "/v1/workspaces/"+ws+"/api-keys", map[string]any{"business_type": "maas"}).str("id")
	}
	freshAccount := func(withKey bool) string {
		id := h.as("POST", "/v1/accounts", map[string]any{"name": "victim-" + uniq()}).str("id")
		if withKey {
			h.as("POST", "/v1/accounts/"+id+"/access-key", nil)
		}
		return id
	}
	freshRole := func() string { return h.role("victim-"+uniq(), []string{"api_key:read"}) }
	wsp := "/v1/workspaces/" + ws
	routes := []struct {
		method string
		path   func() string
		body   func() any
		kind   int
		ok     int
	}{
		{"GET", func() string { return "/v1/me" }, nil, open, 200},
		{"GET", func() string { return "/v1/workspaces" }, nil, open, 200},
		{"GET", func() string { return "/v1/accounts" }, nil, open, 200},
		{"GET", func() string { return "/v1/accounts/" + memberWith }, nil, readTarget, 200},
		{"GET", func() string { return "/v1/accounts/" + memberWithout }, nil, openTarget, 200}, // itself for one caller
		{"POST", func() string { return "/v1/workspaces" }, func() any { return map[string]any{"name": "w" + uniq()} }, createWS, 201},
		{"GET", func() string { return wsp }, nil, memberOnly, 200},
		{"PATCH", func() string { return wsp }, func() any { return map[string]any{"description": "d" + uniq()} }, workspace, 200},
		{"GET", func() string { return wsp + "/members" }, nil, workspace, 200},
		{"PUT", func() string { return wsp + "/members" }, func() any {
			return map[string]any{"account_ids": []string{memberWith, memberWithout, disabled, deletedKey}}
		}, workspace, 200},
		{"POST", func() string { return wsp + "/api-keys" }, func() any { return map[string]any{"business_type": "maas"} }, workspace, 201},
		{"POST", func() string { return wsp + "/api-keys/batch" }, func() any {
			return map[string]any{"count": 2, "naming": map[string]any{"prefix": "b" + uniq()}}
		}, workspace, 201},
		{"GET", func() string { return wsp + "/api-keys" }, nil, workspace, 200},
		{"GET", func() string { return wsp + "/api-keys/" + key0 }, nil, workspace, 200},
		{"PATCH", func() string { return wsp + "/api-keys/" + freshKey() }, func() any { return map[string]any{"note": "n"} }, workspace, 200},
		{"DELETE", func() string { return wsp + "/api-keys/" + freshKey() }, nil, workspace, 204},
		{"POST", func() string { return wsp + "/api-keys/" + key0 + "/reveal" }, nil, workspace, 200},
		{"POST", func() string { return "/v1/accounts" }, func() any { return map[string]any{"name": "a" + uniq()} }, adminOwn, 201},
		{"PATCH", func() string { return "/v1/accounts/" + freshAccount(false) }, func() any { return map[string]any{"status": "disabled"} }, adminTarget, 200},
		{"POST", func() string { return "/v1/accounts/" + freshAccount(false) + "/access-key" }, nil, adminTarget, 201},
		{"PATCH", func() string { return "/v1/accounts/" + freshAccount(true) + "/access-key" }, func() any { return map[string]any{"status": "disabled"} }, adminTarget, 200},
		{"DELETE", func() string { return "/v1/accounts/" + freshAccount(true) + "/access-key" }, nil, adminTarget, 204},
		{"POST", func() string { return "/v1/roles" }, func() any { return map[string]any{"name": "r" + uniq()} }, adminOwn, 201},
		{"GET", func() string { return "/v1/roles" }, nil, adminOwn, 200},
		{"GET", func() string { return "/v1/roles/" + freshRole() }, nil, adminTarget, 200},
		{"PATCH", func() string { return "/v1/roles/" + freshRole() }, func() any { return map[string]any{"name": "renamed" + uniq()} }, adminTarget, 200},
		{"DELETE", func() string { return "/v1/roles/" + freshRole() }, nil, adminTarget, 204},
	}
	expected := func(kind int, c string) int {
		switch c {
		case "disabled-account", "deleted-access-key", "no-credential":
			return 401
		}
		switch kind {
		case open:
			return 0
		case openTarget:
			if c == "other-organization" {
				return 404
			}
			return 0
		case readTarget:
			switch c {
			case "other-organization":
				return 404
			case "member-without-permission":
				return 403
			}
			return 0
		case createWS:
			if c == "member-without-permission" {
				return 403
			}
			return 0
		case workspace:
			switch c {
			case "other-organization":
				return 404
			case "member-without-permission", "non-member-with-permission":
				return 403
			}
			return 0
		case memberOnly:
			switch c {
			case "other-organization":
				return 404
			case "non-member-with-permission":
				return 403
			}
			return 0
		case adminTarget:
			switch c {
			case "other-organization":
				return 404
			case "primary":
				return 0
			}
			return 403
		case adminOwn:
			if c == "primary" || c == "other-organization" {
				return 0
			}
			return 403
		}
		panic("unknown kind")
	}
	seen := map[int]int{}
	for _, rt := range routes {
		for _, c := range callers {
			path := rt.path()
			name := rt.method + " " + path + " as " + c.name
			var body any
			if rt.body != nil {
				body = rt.body()
			}
			want := expected(rt.kind, c.name)
			if want == 0 {
				want = rt.ok
			}
			before := h.position()
			r := h.call(c.secret, rt.method, path, body, "X-Keyledger-Position", fmt.Sprint(before))
			seen[r.Status]++
			if r.Status != want {
				t.Errorf("%s: got %d %s, want %d", name, r.Status, r.Raw, want)
				continue
			}
			if want >= 400 && h.position() != before {
				t.Errorf("%s: refused with %d but wrote %d events", name, want, h.position()-before)
			}
		}
	}
	codes := []int{}
	for code := range seen {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	if fmt.Sprint(codes) != "[200 201 204 401 403 404]" {
		t.Fatalf("statuses seen: %v", seen)
	}
}
